import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { Api } from "./api";
import type { CommunityData } from "./Console";
import type { Problem } from "./errors";
import { MAX_AGES, MAX_USES } from "./format";
import { ChannelType } from "./gen/communities/v1/channels_pb";
import { type Invite, JobStatus, type TargetUsersJobStatus } from "./gen/communities/v1/invites_pb";
import { CommunityPermission } from "./gen/communities/v1/permissions_pb";
import { grantableRoles, has } from "./permissions";
import { CopyButton, ProblemView } from "./ui";

const POLL_MS = 700;

export function CreateInvite({
  api,
  data,
  onCreated,
  guard,
}: {
  api: Api;
  data: CommunityData;
  onCreated: () => void;
  guard: (error: unknown) => Problem;
}) {
  const channels = data.channels.filter(
    (c) => c.type !== ChannelType.CATEGORY && has(c.permissions, CommunityPermission.CREATE_INVITE),
  );
  const grantable = useMemo(() => grantableRoles(data.roles, data.me), [data.roles, data.me]);
  const canTarget = data.me.owner || has(data.me.permissions, CommunityPermission.MODIFY_COMMUNITY);

  const [channelId, setChannelId] = useState(channels[0]?.id.toString() ?? "");
  const [roleIds, setRoleIds] = useState<Set<string>>(new Set());
  const [maxAge, setMaxAge] = useState(86400);
  const [maxUses, setMaxUses] = useState(0);
  const [unique, setUnique] = useState(false);
  const [temporary, setTemporary] = useState(false);
  const [file, setFile] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [created, setCreated] = useState<Invite | null>(null);
  const [job, setJob] = useState<TargetUsersJobStatus | null>(null);
  const fileRef = useRef<HTMLInputElement>(null);
  const resultRef = useRef<HTMLDivElement>(null);

  // A different community: start over.
  useEffect(() => {
    setChannelId(channels[0]?.id.toString() ?? "");
    setRoleIds(new Set());
    setCreated(null);
    setJob(null);
    setProblem(null);
  }, [data.community.id]);

  // Roles that are no longer offered (a role edit, a rank change) are dropped from the selection.
  useEffect(() => {
    const offered = new Set(grantable.roles.map((r) => r.id.toString()));
    setRoleIds((current) => new Set([...current].filter((id) => offered.has(id))));
  }, [grantable]);

  // The targeted invite's job, polled until it is done.
  useEffect(() => {
    if (!created?.targeted || (job && job.status !== JobStatus.PROCESSING)) return;
    const timer = setTimeout(async () => {
      try {
        setJob(await api.invites.getTargetUsersJobStatus({ code: created.code }));
      } catch (error) {
        setProblem(guard(error));
      }
    }, job ? POLL_MS : 0);
    return () => clearTimeout(timer);
  }, [api, created, job, guard]);

  async function submit(event: Event) {
    event.preventDefault();
    setBusy(true);
    setProblem(null);
    setCreated(null);
    setJob(null);
    try {
      const targetUsersFile = file ? new Uint8Array(await file.arrayBuffer()) : new Uint8Array();
      const invite = await api.invites.createInvite({
        channelId: BigInt(channelId),
        maxAge,
        maxUses,
        unique,
        temporary,
        roleIds: [...roleIds].map(BigInt),
        targetUsersFile,
      });
      setCreated(invite);
      onCreated();
      setTimeout(() => resultRef.current?.focus());
    } catch (error) {
      setProblem(guard(error));
    } finally {
      setBusy(false);
    }
  }

  function toggleRole(id: string, on: boolean) {
    setRoleIds((current) => {
      const next = new Set(current);
      if (on) next.add(id);
      else next.delete(id);
      return next;
    });
  }

  if (channels.length === 0) {
    return (
      <section aria-labelledby="create-heading" class="card">
        <h2 id="create-heading">Create an invite</h2>
        <p>You cannot create invites here: that needs the “Create invite” permission in a text or voice channel.</p>
      </section>
    );
  }

  return (
    <section aria-labelledby="create-heading" class="card">
      <h2 id="create-heading">Create an invite</h2>
      <form onSubmit={submit} aria-describedby="create-help">
        <p id="create-help" class="help">
          Players who accept the invite join the community and get the roles you tick.
        </p>
        <label for="invite-channel">Channel</label>
        <select
          id="invite-channel"
          value={channelId}
          onChange={(e) => setChannelId((e.target as HTMLSelectElement).value)}
        >
          {channels.map((channel) => (
            <option key={channel.id.toString()} value={channel.id.toString()}>
              #{channel.name}
            </option>
          ))}
        </select>

        <fieldset class="roles-choice">
          <legend>Roles (Optional)</legend>
          {grantable.why ? (
            <p class="help">{grantable.why}</p>
          ) : (
            grantable.roles.map((role) => {
              const id = role.id.toString();
              return (
                <label class="choice" key={id}>
                  <input
                    type="checkbox"
                    name="role"
                    value={id}
                    checked={roleIds.has(id)}
                    onChange={(e) => toggleRole(id, (e.target as HTMLInputElement).checked)}
                  />
                  {role.name}
                </label>
              );
            })
          )}
        </fieldset>

        <div class="row">
          <div>
            <label for="invite-max-age">Expire after</label>
            <select
              id="invite-max-age"
              value={String(maxAge)}
              onChange={(e) => setMaxAge(Number((e.target as HTMLSelectElement).value))}
            >
              {MAX_AGES.map(([seconds, label]) => (
                <option key={seconds} value={String(seconds)}>
                  {label}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label for="invite-max-uses">Max number of uses</label>
            <select
              id="invite-max-uses"
              value={String(maxUses)}
              onChange={(e) => setMaxUses(Number((e.target as HTMLSelectElement).value))}
            >
              {MAX_USES.map(([uses, label]) => (
                <option key={uses} value={String(uses)}>
                  {label}
                </option>
              ))}
            </select>
          </div>
        </div>

        <label class="choice">
          <input type="checkbox" checked={unique} onChange={(e) => setUnique((e.target as HTMLInputElement).checked)} />
          Always a new code (unique)
        </label>
        <p class="help indent">Otherwise an active invite of yours with the same settings may be given again.</p>
        <label class="choice">
          <input
            type="checkbox"
            checked={temporary}
            onChange={(e) => setTemporary((e.target as HTMLInputElement).checked)}
          />
          Temporary membership
        </label>
        <p class="help indent">Members who joined with it are removed when they go offline, unless given a role.</p>

        <label for="invite-targets">Only these users (optional CSV of user ids)</label>
        <input
          id="invite-targets"
          type="file"
          accept=".csv,text/csv,text/plain"
          ref={fileRef}
          disabled={!canTarget}
          aria-describedby="targets-help"
          onChange={(e) => setFile((e.target as HTMLInputElement).files?.[0] ?? null)}
        />
        <p id="targets-help" class="help">
          {canTarget
            ? "One user id per line, with or without a user_id header. Only the listed users can see and accept it."
            : "Targeted invites need the “Modify community” permission."}
        </p>
        {file && (
          <button
            type="button"
            class="secondary"
            onClick={() => {
              setFile(null);
              if (fileRef.current) fileRef.current.value = "";
            }}
          >
            Remove {file.name}
          </button>
        )}

        <ProblemView problem={problem} id="create-problem" />
        <button type="submit" disabled={busy || !channelId}>
          {busy ? "Creating…" : "Create invite"}
        </button>
      </form>

      {created && (
        <div class="result" tabIndex={-1} ref={resultRef} aria-labelledby="created-heading">
          <h3 id="created-heading">Invite created</h3>
          <div class="code-line">
            <label for="created-code">Code</label>
            <input id="created-code" readOnly value={created.code} class="code" onFocus={(e) => (e.target as HTMLInputElement).select()} />
            <CopyButton text={created.code} label="Invite code" />
          </div>
          <p class="help">
            {created.roles.length ? `Grants ${created.roles.map((r) => r.name).join(", ")}. ` : ""}
            {created.expiresAt ? "" : "Never expires. "}
            Players accept it with <code>Invites/UseInvite</code>.
          </p>
          {created.targeted && <JobProgress job={job} />}
        </div>
      )}
    </section>
  );
}

function JobProgress({ job }: { job: TargetUsersJobStatus | null }) {
  if (!job) return <p role="status">Storing the user list…</p>;
  const total = job.totalUsers;
  const done = job.processedUsers;
  return (
    <div class="job" role="status">
      {job.status === JobStatus.PROCESSING && (
        <>
          <label for="job-progress">
            Storing the user list: {done} of {total}
          </label>
          <progress id="job-progress" max={total || 1} value={done} />
        </>
      )}
      {job.status === JobStatus.COMPLETED && (
        <p>
          User list stored: {total} user{total === 1 ? "" : "s"} can accept this invite.
          {job.unknownUsers > 0 &&
            ` ${job.unknownUsers} of them ${job.unknownUsers === 1 ? "is" : "are"} not registered yet (kept: they may register later).`}
        </p>
      )}
      {job.status === JobStatus.FAILED && (
        <p class="problem">Storing the user list failed: {job.errorMessage || "no reason given"}. The invite admits nobody until its list is replaced.</p>
      )}
    </div>
  );
}
