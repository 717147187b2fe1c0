// The console's sign-in: a token kept only in sessionStorage (gone when the tab closes; never in the URL or
// localStorage), obtained from a one-time login link (`#login=CODE`) or pasted.

const KEY = "communities.console.session";

export type Session = {
  // The whole header value: `Bearer <token>` or `Bot <token>`.
  authorization: string;
  userId: string;
  name: string;
};

export function loadSession(): Session | null {
  const raw = sessionStorage.getItem(KEY);
  if (!raw) return null;
  try {
    const session = JSON.parse(raw) as Session;
    return typeof session.authorization === "string" ? session : null;
  } catch {
    return null;
  }
}

export function saveSession(session: Session): void {
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

export function clearSession(): void {
  sessionStorage.removeItem(KEY);
}

// Takes `#login=CODE` out of the address bar (and so out of history) before anything uses it.
export function takeLoginCode(): string | null {
  const match = /^#login=([^&]*)/.exec(location.hash);
  if (!match) return null;
  history.replaceState(null, "", location.pathname + location.search);
  return decodeURIComponent(match[1]);
}

export class LoginError extends Error {}

// Trades a login link's one-time code for a token (POST /console/login).
export async function exchangeLoginCode(code: string): Promise<Session> {
  let response: Response;
  try {
    response = await fetch("/console/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ code }),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new LoginError("Cannot reach the server to sign in. Check that it is running and try the link again.");
  }
  let body: Record<string, unknown> = {};
  try {
    body = await response.json();
  } catch {
    // An answer without JSON: described by its status below.
  }
  if (!response.ok || typeof body.token !== "string") {
    if (response.status === 401) {
      throw new LoginError(
        "This login link was already used or has expired. Ask for a new one: communities console-link USER_ID.",
      );
    }
    const message = typeof body.message === "string" ? body.message : `HTTP ${response.status}`;
    throw new LoginError(`Sign-in failed: ${message}`);
  }
  return { authorization: `Bearer ${body.token}`, userId: String(body.user_id ?? ""), name: String(body.name ?? "") };
}

// The header for a pasted token: a leading `Bearer `/`Bot ` wins over the chosen kind.
export function authorizationFor(kind: "Bearer" | "Bot", pasted: string): string {
  const text = pasted.trim();
  const prefixed = /^(Bearer|Bot)\s+(\S+)$/i.exec(text);
  if (prefixed) {
    const scheme = prefixed[1].toLowerCase() === "bot" ? "Bot" : "Bearer";
    return `${scheme} ${prefixed[2]}`;
  }
  return `${kind} ${text}`;
}
