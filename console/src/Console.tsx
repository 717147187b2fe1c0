import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { makeApi, type Api } from "./api";
import type { Session } from "./auth";
import { describeError, type Problem } from "./errors";
import { fromNow, isoWhen, when } from "./format";
import { type Channel, ChannelType } from "./gen/communities/v1/channels_pb";
import type { Community } from "./gen/communities/v1/communities_pb";
import { type Invite, InviteState } from "./gen/communities/v1/invites_pb";
import type { CommunityMember } from "./gen/communities/v1/members_pb";
import { CommunityPermission } from "./gen/communities/v1/permissions_pb";
import type { CommunityRole, PermissionExplanation } from "./gen/communities/v1/roles_pb";
import type { Update } from "./gen/communities/v1/updates_pb";
import { CreateInvite } from "./CreateInvite";
import { follow, type LiveState } from "./live";
import { has } from "./permissions";
import { ProblemView } from "./ui";

// Everything shown about the selected community; `undefined` while loading, a Problem when it failed.
type Loaded<T> = T | Problem | undefined;
const isProblem = <T,>(value: Loaded<T>): value is Problem =>
  typeof value === "object" && value !== null && "lines" in value && "text" in value;

export type CommunityData = {
  community: Community;
  roles: CommunityRole[];
  channels: Channel[];
  me: PermissionExplanation;
};

// A member who joined with an invite, as "who joined" lists it.
type Joined = { member: CommunityMember; left: boolean };

const LIVE_TEXT: Record<LiveState, string> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  stopped: "Not live",
};

export function Console({
  session,
  onSignOut,
  onUnauthenticated,
}: {
  session: Session;
  onSignOut: () => void;
  onUnauthenticated: () => void;
}) {
  const api = useMemo(() => makeApi(session.authorization), [session.authorization]);
  const [communities, setCommunities] = useState<Loaded<Community[]>>(undefined);
  const [selected, setSelected] = useState<bigint | null>(null);
  const [data, setData] = useState<Loaded<CommunityData>>(undefined);
  const [invites, setInvites] = useState<Loaded<Invite[]>>(undefined);
  const [joined, setJoined] = useState<Map<string, Joined>>(new Map());
  const [names, setNames] = useState<Map<string, string>>(new Map());
  const [live, setLive] = useState<LiveState>("connecting");
  const [announcement, setAnnouncement] = useState("");
  const selectedRef = useRef<bigint | null>(null);
  selectedRef.current = selected;

  // Any UNAUTHENTICATED answer ends the session: the token expired or was revoked.
  const guard = useCallback(
    (error: unknown): Problem => {
      const problem = describeError(error);
      if (problem.reason === "UNAUTHENTICATED") onUnauthenticated();
      return problem;
    },
    [onUnauthenticated],
  );

  const loadCommunities = useCallback(async () => {
    try {
      const list = await api.communities.getCommunities({});
      setCommunities(list.communities);
      setSelected((current) =>
        current !== null && list.communities.some((c) => c.id === current)
          ? current
          : (list.communities[0]?.id ?? null),
      );
    } catch (error) {
      setCommunities(guard(error));
    }
  }, [api, guard]);

  // User names for ids, fetched 100 at a time; answers the names it knows afterwards.
  const namesRef = useRef(names);
  namesRef.current = names;
  const resolveNames = useCallback(
    async (ids: bigint[]): Promise<Map<string, string>> => {
      const known = new Map(namesRef.current);
      const missing = [...new Set(ids.map(String))].filter((id) => !known.has(id));
      for (let start = 0; start < missing.length; start += 100) {
        try {
          const found = await api.users.getUsers({ userIds: missing.slice(start, start + 100).map(BigInt) });
          for (const user of found.users) known.set(user.id.toString(), user.name);
        } catch (error) {
          guard(error); // names are a nicety: ids stay shown
        }
      }
      if (missing.length) setNames((current) => new Map([...current, ...known]));
      return known;
    },
    [api, guard],
  );

  const communitiesRef = useRef(communities);
  communitiesRef.current = communities;
  const loadCommunity = useCallback(
    async (communityId: bigint) => {
      const list = communitiesRef.current;
      const community = Array.isArray(list) ? list.find((c) => c.id === communityId) : undefined;
      if (!community) return;
      try {
        const [roles, channels, me] = await Promise.all([
          api.roles.getRoles({ communityId }),
          api.channels.getChannels({ communityId }),
          api.roles.explainPermissions({ communityId }),
        ]);
        if (selectedRef.current !== communityId) return;
        setData({ community, roles: roles.roles, channels: channels.channels, me });
      } catch (error) {
        if (selectedRef.current === communityId) setData(guard(error));
      }
    },
    [api, guard],
  );

  const loadInvites = useCallback(
    async (communityId: bigint) => {
      try {
        const list: Invite[] = [];
        let pageToken = "";
        do {
          const page = await api.invites.listInvites({
            scope: { case: "communityId", value: communityId },
            includeInactive: true,
            pageSize: 1000,
            pageToken,
          });
          list.push(...page.invites);
          pageToken = page.nextPageToken;
        } while (pageToken);
        if (selectedRef.current === communityId) setInvites(list);
      } catch (error) {
        if (selectedRef.current === communityId) setInvites(guard(error));
      }
    },
    [api, guard],
  );

  // Whether the last load of "who joined" failed (it shows what the stream brought meanwhile, not a Problem).
  const membersFailed = useRef(false);
  const loadMembers = useCallback(
    async (communityId: bigint) => {
      const found: CommunityMember[] = [];
      try {
        let pageToken = "";
        do {
          const page = await api.members.listMembers({ communityId, pageSize: 1000, pageToken });
          found.push(...page.members.filter((m) => m.inviteCode));
          pageToken = page.nextPageToken;
        } while (pageToken);
      } catch (error) {
        guard(error);
        membersFailed.current = true;
        return;
      }
      if (selectedRef.current !== communityId) return;
      membersFailed.current = false;
      // Joins the stream delivered while the list loaded are kept (same member: the newer record wins).
      setJoined((current) => {
        const next = new Map<string, Joined>();
        for (const member of found) next.set(member.id.toString(), { member, left: false });
        for (const [id, entry] of current) if (entry.member.communityId === communityId) next.set(id, entry);
        return next;
      });
      void resolveNames(found.map((m) => m.id));
    },
    [api, guard, resolveNames],
  );

  useEffect(() => {
    void loadCommunities();
  }, [loadCommunities]);

  const reloadSelected = useCallback(() => {
    const communityId = selectedRef.current;
    if (communityId === null) return;
    void loadCommunity(communityId);
    void loadInvites(communityId);
    void loadMembers(communityId);
  }, [loadCommunity, loadInvites, loadMembers]);

  // Another community: load everything afresh.
  useEffect(() => {
    setData(undefined);
    setInvites(undefined);
    setJoined(new Map());
    reloadSelected();
  }, [selected]);

  // The list reloaded (a rename, a new membership): keep what is shown, with the community's new record.
  useEffect(() => {
    const found = Array.isArray(communities) ? communities.find((c) => c.id === selectedRef.current) : undefined;
    if (found) setData((current) => (current && !isProblem(current) ? { ...current, community: found } : current));
  }, [communities]);

  // A burst of joins reloads the invite list once.
  const invitesTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const invitesSoon = (communityId: bigint) => {
    clearTimeout(invitesTimer.current);
    invitesTimer.current = setTimeout(() => void loadInvites(communityId), 250);
  };

  // The live stream: opened once per sign-in; handlers read the latest state through a ref.
  const onUpdate = useRef<(update: Update) => void>(() => {});
  onUpdate.current = (update: Update) => {
    const event = update.event;
    const current = selectedRef.current;
    if (event.case === "communityUpdated" || event.case === "communityDeleted") {
      void loadCommunities();
      return;
    }
    if (event.case === "memberJoined" && event.value.member?.id.toString() === session.userId) {
      void loadCommunities(); // the signed-in user joined another community
    }
    if (current === null || update.communityId !== current) return;
    switch (event.case) {
      case "memberJoined": {
        const member = event.value.member;
        if (!member || !event.value.inviteCode) break;
        setJoined((map) => new Map(map).set(member.id.toString(), { member, left: false }));
        const code = event.value.inviteCode;
        void resolveNames([member.id]).then((known) =>
          setAnnouncement(`${known.get(member.id.toString()) ?? "A member"} joined with invite ${code}`),
        );
        invitesSoon(current); // uses and state changed
        break;
      }
      case "memberUpdated": {
        const member = event.value.member;
        if (!member) break;
        setJoined((map) => {
          const entry = map.get(member.id.toString());
          return entry ? new Map(map).set(member.id.toString(), { ...entry, member }) : map;
        });
        break;
      }
      case "memberLeft": {
        const id = event.value.userId.toString();
        setJoined((map) => {
          const entry = map.get(id);
          return entry ? new Map(map).set(id, { ...entry, left: true }) : map;
        });
        if (id === session.userId) void loadCommunities();
        break;
      }
      case "inviteCreated":
      case "inviteDeleted":
        invitesSoon(current);
        break;
      case "roleCreated":
      case "roleUpdated":
      case "roleDeleted":
      case "defaultPermissionsUpdated":
      case "channelCreated":
      case "channelUpdated":
      case "channelDeleted":
      case "overrideUpdated":
      case "overrideDeleted":
        void loadCommunity(current);
        break;
    }
  };

  // Back live after the stream dropped (the server restarted, the network came back): load again whatever
  // failed to load meanwhile, so that a passing outage does not leave an error on the page.
  const loaded = useRef({ communities, data, invites });
  loaded.current = { communities, data, invites };
  const recover = () => {
    const { communities, data, invites } = loaded.current;
    if (isProblem(communities)) void loadCommunities();
    const communityId = selectedRef.current;
    if (communityId === null) return;
    if (isProblem(data)) void loadCommunity(communityId);
    if (isProblem(invites)) void loadInvites(communityId);
    if (membersFailed.current) void loadMembers(communityId);
  };
  const recoverRef = useRef(recover);
  recoverRef.current = recover;

  useEffect(() => {
    const stop = new AbortController();
    let wasLive = false;
    follow(
      api,
      {
        onUpdate: (update) => onUpdate.current(update),
        onState: (state) => {
          if (state === "live" && wasLive) recoverRef.current();
          if (state === "live") wasLive = true;
          setLive(state);
        },
        onReload: () => {
          void loadCommunities();
          reloadSelected();
        },
        onUnauthenticated,
      },
      stop.signal,
    );
    return () => stop.abort();
  }, [api]);

  const refreshInvites = useCallback(() => {
    if (selectedRef.current !== null) void loadInvites(selectedRef.current);
  }, [loadInvites]);

  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <h1>Communities console</h1>
        <div class="who">
          <span>
            Signed in as <strong>{session.name || session.userId}</strong>
            {session.authorization.startsWith("Bot ") && " (bot)"}
          </span>
          <span class={`live live-${live}`} role="status" aria-label={`Live updates: ${LIVE_TEXT[live]}`}>
            {LIVE_TEXT[live]}
          </span>
          <button type="button" class="secondary" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <CommunityPicker communities={communities} selected={selected} onSelect={setSelected} />
        {selected !== null && isProblem(data) && <ProblemView problem={data} />}
        {selected !== null && data === undefined && <p role="status">Loading the community…</p>}
        {selected !== null && data !== undefined && !isProblem(data) && (
          <div class="grid">
            <CreateInvite api={api} data={data} onCreated={refreshInvites} guard={guard} />
            <WhoJoined joined={joined} names={names} invites={invites} announcement={announcement} />
            <Invites
              api={api}
              data={data}
              invites={invites}
              joined={joined}
              onChanged={refreshInvites}
              guard={guard}
            />
            <Overview data={data} />
          </div>
        )}
      </main>
    </>
  );
}

function CommunityPicker({
  communities,
  selected,
  onSelect,
}: {
  communities: Loaded<Community[]>;
  selected: bigint | null;
  onSelect: (id: bigint) => void;
}) {
  if (communities === undefined) return <p role="status">Loading your communities…</p>;
  if (isProblem(communities)) return <ProblemView problem={communities} />;
  if (communities.length === 0) {
    return <p>You are not in any community yet. Create one through the API, or join one with an invite.</p>;
  }
  return (
    <div class="picker">
      <label for="community">Community</label>
      <select
        id="community"
        value={selected?.toString() ?? ""}
        onChange={(event) => onSelect(BigInt((event.target as HTMLSelectElement).value))}
      >
        {communities.map((community) => (
          <option key={community.id.toString()} value={community.id.toString()}>
            {community.name}
            {community.owner ? " (owner)" : ""}
          </option>
        ))}
      </select>
    </div>
  );
}

const STATE_TEXT: Record<InviteState, string> = {
  [InviteState.UNSPECIFIED]: "Unknown",
  [InviteState.ACTIVE]: "Active",
  [InviteState.EXPIRED]: "Expired",
  [InviteState.USED_UP]: "Used up",
};

function expiry(invite: Invite): string {
  if (!invite.expiresAt) return "Never expires";
  const moment = `${when(invite.expiresAt)} (${fromNow(invite.expiresAt)})`;
  return invite.state === InviteState.EXPIRED ? `Expired ${moment}` : `Expires ${moment}`;
}

function Invites({
  api,
  data,
  invites,
  joined,
  onChanged,
  guard,
}: {
  api: Api;
  data: CommunityData;
  invites: Loaded<Invite[]>;
  joined: Map<string, Joined>;
  onChanged: () => void;
  guard: (error: unknown) => Problem;
}) {
  const channelNames = new Map(data.channels.map((c) => [c.id.toString(), c.name]));
  return (
    <section aria-labelledby="invites-heading" class="card wide">
      <h2 id="invites-heading">Invites</h2>
      {invites === undefined && <p role="status">Loading invites…</p>}
      {isProblem(invites) && <ProblemView problem={invites} />}
      {Array.isArray(invites) && invites.length === 0 && <p>No invites yet.</p>}
      {Array.isArray(invites) && invites.length > 0 && (
        <ul class="invites">
          {invites.map((invite) => (
            <InviteItem
              key={invite.code}
              api={api}
              invite={invite}
              channel={channelNames.get(invite.channelId.toString()) ?? invite.channelId.toString()}
              joinedCount={[...joined.values()].filter((j) => j.member.inviteCode === invite.code).length}
              onChanged={onChanged}
              guard={guard}
            />
          ))}
        </ul>
      )}
    </section>
  );
}

function InviteItem({
  api,
  invite,
  channel,
  joinedCount,
  onChanged,
  guard,
}: {
  api: Api;
  invite: Invite;
  channel: string;
  joinedCount: number;
  onChanged: () => void;
  guard: (error: unknown) => Problem;
}) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const cancelRef = useRef<HTMLButtonElement>(null);
  const deleteRef = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    if (confirming) cancelRef.current?.focus();
  }, [confirming]);

  async function remove() {
    setBusy(true);
    setProblem(null);
    try {
      await api.invites.deleteInvite({ code: invite.code });
      onChanged();
    } catch (error) {
      setProblem(guard(error));
      setConfirming(false);
    } finally {
      setBusy(false);
    }
  }

  return (
    <li class={`invite state-${InviteState[invite.state].toLowerCase()}`} data-code={invite.code}>
      <div class="invite-head">
        <code class="code">{invite.code}</code>
        <span class="badge">{STATE_TEXT[invite.state]}</span>
        {invite.targeted && <span class="badge">Targeted</span>}
        {invite.temporary && <span class="badge">Temporary</span>}
      </div>
      <dl>
        <dt>Channel</dt>
        <dd>#{channel}</dd>
        <dt>Roles</dt>
        <dd>{invite.roles.length ? invite.roles.map((r) => r.name).join(", ") : "None"}</dd>
        <dt>Uses</dt>
        <dd class="uses">
          {invite.uses} / {invite.maxUses ? invite.maxUses : "no limit"}
        </dd>
        <dt>Expiry</dt>
        <dd>
          <time dateTime={isoWhen(invite.expiresAt)}>{expiry(invite)}</time>
        </dd>
        <dt>Joined</dt>
        <dd>{joinedCount}</dd>
      </dl>
      <ProblemView problem={problem} />
      {!confirming ? (
        <button
          type="button"
          class="danger"
          ref={deleteRef}
          onClick={() => setConfirming(true)}
          aria-label={`Delete invite ${invite.code}`}
        >
          Delete
        </button>
      ) : (
        <div class="confirm" role="group" aria-label={`Confirm deleting invite ${invite.code}`}>
          <p>
            Delete invite <code>{invite.code}</code>? Nobody can join with it any more; roles it granted stay.
          </p>
          <button type="button" class="danger" disabled={busy} onClick={remove}>
            Yes, delete {invite.code}
          </button>
          <button
            type="button"
            class="secondary"
            ref={cancelRef}
            onClick={() => {
              setConfirming(false);
              setTimeout(() => deleteRef.current?.focus());
            }}
          >
            Cancel
          </button>
        </div>
      )}
    </li>
  );
}

function WhoJoined({
  joined,
  names,
  invites,
  announcement,
}: {
  joined: Map<string, Joined>;
  names: Map<string, string>;
  invites: Loaded<Invite[]>;
  announcement: string;
}) {
  // Grouped by invite, in the invite list's order (newest first), then codes no longer listed.
  const groups = new Map<string, Joined[]>();
  if (Array.isArray(invites)) for (const invite of invites) groups.set(invite.code, []);
  for (const entry of joined.values()) {
    const code = entry.member.inviteCode;
    if (!groups.has(code)) groups.set(code, []);
    groups.get(code)!.push(entry);
  }
  const shown = [...groups].filter(([, entries]) => entries.length > 0);
  const joinedAt = (entry: Joined) => Number(entry.member.joinedAt?.seconds ?? 0n);
  return (
    <section aria-labelledby="joined-heading" class="card">
      <h2 id="joined-heading">Who joined</h2>
      <p class="help">Members by the invite they joined with; new joins appear here as they happen.</p>
      <p class="visually-hidden" aria-live="polite">
        {announcement}
      </p>
      <div id="who-joined">
        {shown.length === 0 && <p>Nobody has joined with an invite yet.</p>}
        {shown.map(([code, entries]) => (
          <div class="joined-group" key={code} data-code={code}>
            <h3>
              <code>{code}</code> <span class="count">({entries.length} joined)</span>
            </h3>
            <ul>
              {entries
                .sort((a, b) => joinedAt(b) - joinedAt(a))
                .map((entry) => {
                  const id = entry.member.id.toString();
                  return (
                    <li key={id} class={entry.left ? "left" : undefined}>
                      <span class="name">{names.get(id) ?? `User ${id}`}</span>{" "}
                      <time dateTime={isoWhen(entry.member.joinedAt)}>{when(entry.member.joinedAt)}</time>
                      {entry.left && <span class="badge">Left</span>}
                    </li>
                  );
                })}
            </ul>
          </div>
        ))}
      </div>
    </section>
  );
}

const PERMISSION_LABELS: [CommunityPermission, string][] = [
  [CommunityPermission.ADMINISTRATOR, "Administrator"],
  [CommunityPermission.MODIFY_COMMUNITY, "Modify community"],
  [CommunityPermission.MODIFY_ROLES, "Modify roles"],
  [CommunityPermission.MODIFY_CHANNEL, "Modify channels"],
  [CommunityPermission.CREATE_INVITE, "Create invite"],
  [CommunityPermission.REMOVE_MEMBERS, "Remove members"],
];

function Overview({ data }: { data: CommunityData }) {
  const mine = PERMISSION_LABELS.filter(([flag]) => has(data.me.permissions, flag)).map(([, label]) => label);
  return (
    <section aria-labelledby="overview-heading" class="card">
      <h2 id="overview-heading">{data.community.name}</h2>
      <p>
        You are {data.me.owner ? "the owner" : `a member (rank ${data.me.rank})`}
        {mine.length ? `; you can: ${mine.join(", ")}.` : "."}
      </p>
      <h3>Roles</h3>
      {data.roles.length === 0 ? (
        <p>No roles.</p>
      ) : (
        <ul class="roles">
          {data.roles.map((role) => (
            <li key={role.id.toString()}>
              <span
                class="swatch"
                aria-hidden="true"
                style={{ backgroundColor: role.color ? `#${role.color.toString(16).padStart(6, "0")}` : undefined }}
              />
              {role.name} <span class="help">priority {role.priority}</span>
            </li>
          ))}
        </ul>
      )}
      <h3>Channels</h3>
      <ul class="channels">
        {data.channels.map((channel) => (
          <li key={channel.id.toString()}>
            {channel.type === ChannelType.CATEGORY ? channel.name.toUpperCase() : `#${channel.name}`}{" "}
            <span class="help">{ChannelType[channel.type].toLowerCase()}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}
