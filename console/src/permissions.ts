// Which roles a manager may put on an invite, computed from what the API reports, by the server's own rule
// (CreateInvite): MODIFY_ROLES, and each role strictly below the manager's rank with no permission bit the
// manager lacks. The server still checks; this only keeps the form from offering what it would refuse.
import { CommunityPermission } from "./gen/communities/v1/permissions_pb";
import type { CommunityRole, PermissionExplanation } from "./gen/communities/v1/roles_pb";

export const has = (permissions: bigint, flag: CommunityPermission): boolean =>
  (permissions & BigInt(flag)) !== 0n;

export type Grantable = { roles: CommunityRole[]; why: string | null };

export function grantableRoles(roles: CommunityRole[], me: PermissionExplanation): Grantable {
  if (!me.owner && !has(me.permissions, CommunityPermission.MODIFY_ROLES)) {
    return { roles: [], why: "Granting roles needs the “Modify roles” permission, which you do not have." };
  }
  const held = me.permissions;
  const offered = roles.filter(
    (role) => (me.owner || role.priority < me.rank) && (role.permissions & ~held) === 0n,
  );
  if (offered.length === 0) {
    return {
      roles: [],
      why: roles.length === 0 ? "This community has no roles yet." : "No role is below your own highest role.",
    };
  }
  return { roles: offered, why: null };
}
