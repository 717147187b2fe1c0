// Every error the API returns, in words: the ErrorInfo reason as a sentence (falling back to the server's
// message), and each BadRequest field violation as the server words it (e.g. "Line 3: invalid user ID").
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb";

export type Problem = {
  text: string;
  // One line per field violation, for a list under the text.
  lines: string[];
  code?: Code;
  reason?: string;
};

const PERMISSION_NAMES: Record<string, string> = {
  ADMINISTRATOR: "Administrator",
  VIEW_CHANNEL: "View channel",
  MODIFY_CHANNEL: "Modify channels",
  MODIFY_COMMUNITY: "Modify community",
  MODIFY_ROLES: "Modify roles",
  REMOVE_MEMBERS: "Remove members",
  CREATE_INVITE: "Create invite",
};

function unknown(kind: string): string {
  return `That ${kind} does not exist, or you cannot see it (it may have been deleted).`;
}

const SENTENCES: Record<string, (metadata: Record<string, string>) => string> = {
  UNAUTHENTICATED: () => "Your sign-in is not valid any more (the token expired or was revoked). Sign in again.",
  MISSING_PERMISSIONS: (m) =>
    m.permission
      ? `You need the “${PERMISSION_NAMES[m.permission] ?? m.permission}” permission for this.`
      : "You do not have the permission this needs.",
  ROLE_HIERARCHY: () => "You can only grant or manage roles that are below your own highest role.",
  NOT_OWNER: () => "Only the community's owner can do this.",
  NOT_AUTHOR: () => "Only the author can do this.",
  OWNER_CANNOT_LEAVE: () => "The owner cannot leave the community; delete it instead.",
  BANNED: () => "That user is banned from the community.",
  UNKNOWN_COMMUNITY: () => unknown("community"),
  UNKNOWN_CHANNEL: () => unknown("channel"),
  UNKNOWN_ROLE: () => unknown("role"),
  UNKNOWN_MEMBER: () => unknown("member"),
  UNKNOWN_INVITE: () => unknown("invite"),
  UNKNOWN_USER: () => unknown("user"),
  UNKNOWN_FILE: () => unknown("file"),
  UNKNOWN_MESSAGE: () => unknown("message"),
  INVALID_ARGUMENT: () => "Some of what you entered is not valid:",
  INVALID_CHANNEL_TYPE: () => "Invites lead to a text or voice channel, not to a category.",
  CHANNEL_NOT_TEXT: () => "That needs a text channel.",
  LIMIT_REACHED: (m) =>
    m.limit ? `A limit was reached: ${m.limit.replaceAll("_", " ")} (at most ${m.max}).` : "A limit was reached.",
  TARGET_USERS_JOB_RUNNING: () => "The invite's user list is still being stored; wait until it is done.",
  CURSOR_EXPIRED: () => "The live updates fell too far behind; the page reloads its data.",
  UNAVAILABLE: () => "The server is unavailable right now (it may be restarting). Try again in a moment.",
  INTERNAL: () => "The server failed to do this; the error was logged on the server.",
};

export function describeError(error: unknown): Problem {
  if (!(error instanceof ConnectError)) {
    const message = error instanceof Error ? error.message : String(error);
    return { text: `Something went wrong: ${message}`, lines: [] };
  }
  const info = error.findDetails(ErrorInfoSchema)[0];
  const lines = error
    .findDetails(BadRequestSchema)
    .flatMap((bad) => bad.fieldViolations)
    // Per-line file errors already say where they are ("Line 3: ..."); other fields get their name in front.
    .map((v) => (/^Line \d+:/.test(v.description) ? v.description : `${v.field}: ${v.description}`));
  const reason = info?.reason;
  const sentence = reason ? SENTENCES[reason] : undefined;
  let text: string;
  if (sentence) {
    text = sentence(info?.metadata ?? {});
    if (reason === "INVALID_ARGUMENT" && lines.length === 0) text = `Not valid: ${error.rawMessage}`;
  } else if (!info && (error.code === Code.Unavailable || error.code === Code.Unknown) && !error.rawMessage) {
    text = "Cannot reach the server. Check that it is running, then try again.";
  } else if (!info && error.code === Code.Unavailable) {
    text = `Cannot reach the server (${error.rawMessage}). Check that it is running, then try again.`;
  } else {
    text = error.rawMessage || `The server answered ${Code[error.code]}.`;
  }
  return { text, lines, code: error.code, reason };
}
