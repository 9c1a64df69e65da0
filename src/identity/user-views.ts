import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { VersionConfig } from '../policies/versioning/schema.js';
import type { IdentityConfig } from './schema.js';
import type { UserDto } from './service.js';
import { closed } from './route-kit.js';

/**
 * The representations of the users API, one per version. The routes, the service calls and the
 * authorization are the same for every version (src/identity/routes.ts); only what goes in and
 * out differs here.
 */

/** Names of the built-in versions: a config's own version names cannot contain ':'. */
export const USERS_V1 = 'identity:users-v1';
export const USERS_V2 = 'identity:users-v2';

/** The users API's versions, for the routes to name (`/api/v1/users` announces `/api/v2/users`). */
export function identityVersions(config: IdentityConfig): Record<string, VersionConfig> {
  const v1 = config.usersApi.v1;
  return {
    [USERS_V1]: { prefix: '/api/v1', successor: USERS_V2, default: false, deprecated: v1.deprecated, sunset: v1.sunset, link: v1.link },
    [USERS_V2]: { prefix: '/api/v2', default: false },
  };
}

const Email = Type.String({ minLength: 3, maxLength: 320 });
const Password = Type.String({ minLength: 1, maxLength: 4096 });
const Role = Type.String({ pattern: '^[a-z][a-z0-9_-]{0,63}$' });
const Roles = Type.Array(Role, { maxItems: 32, uniqueItems: true });
const Status = Type.Union([Type.Literal('active'), Type.Literal('disabled')]);

const PatchV1 = Type.Object({ email: Type.Optional(Email), currentPassword: Type.Optional(Password), roles: Type.Optional(Roles), status: Type.Optional(Status) }, { ...closed, minProperties: 1 });
const PatchV2 = Type.Object(
  { email: Type.Optional(Email), currentPassword: Type.Optional(Password), roles: Type.Optional(Roles), account: Type.Optional(Type.Object({ status: Type.Optional(Status) }, { ...closed, minProperties: 1 })) },
  { ...closed, minProperties: 1 },
);

/** A change to a user, whatever the version's body looked like. */
export interface UserPatch {
  email?: string | undefined;
  currentPassword?: string | undefined;
  roles?: string[] | undefined;
  status?: 'active' | 'disabled' | undefined;
  /** The admin-only fields the body sets, as this version names them. */
  adminOnly: string[];
}

export interface UsersQueryValues {
  limit?: string | undefined;
  cursor?: string | undefined;
  email?: string | undefined;
  role?: string | undefined;
  status?: string | undefined;
}

export interface UsersView<P extends TSchema = TSchema> {
  /** The collection's path; a user is at `<base>/<id>`. */
  readonly base: string;
  readonly version: string;
  user(user: UserDto): unknown;
  page(page: { items: UserDto[]; nextCursor: string | null }, query: UsersQueryValues): unknown;
  readonly patchBody: P;
  patch(body: Static<P>): UserPatch;
}

/** v1: the service's record as is; a page is `{items, nextCursor}`. */
export const usersV1: UsersView<typeof PatchV1> = {
  base: '/api/v1/users',
  version: USERS_V1,
  user: (user) => user,
  page: (page) => page,
  patchBody: PatchV1,
  patch: (body) => ({ email: body.email, currentPassword: body.currentPassword, roles: body.roles, status: body.status, adminOnly: (['roles', 'status'] as const).filter((f) => body[f] !== undefined) }),
};

/** A user as v2 shows it. */
export interface UserV2 {
  id: string;
  email: string;
  roles: string[];
  account: { status: UserDto['status']; passwordChangeRequired: boolean };
  timestamps: { created: string; updated: string };
  links: { self: string; sessions: string };
}

/**
 * v2: the account's state grouped under `account`, the timestamps under `timestamps`, and links
 * to the user and its sessions; a page is `{items, links: {next}}`, the next page's URL with the
 * same filters.
 */
export const usersV2: UsersView<typeof PatchV2> = {
  base: '/api/v2/users',
  version: USERS_V2,
  user: userV2,
  page: (page, query) => ({ items: page.items.map(userV2), links: { next: page.nextCursor === null ? null : nextPage(query, page.nextCursor) } }),
  patchBody: PatchV2,
  patch: (body) => ({
    email: body.email,
    currentPassword: body.currentPassword,
    roles: body.roles,
    status: body.account?.status,
    adminOnly: [...(body.roles !== undefined ? ['roles'] : []), ...(body.account?.status !== undefined ? ['account.status'] : [])],
  }),
};

function userV2(user: UserDto): UserV2 {
  return {
    id: user.id,
    email: user.email,
    roles: user.roles,
    account: { status: user.status, passwordChangeRequired: user.passwordChangeRequired },
    timestamps: { created: user.createdAt, updated: user.updatedAt },
    // The sub-resources (sessions, password, MFA) have one version, under /api/v1.
    links: { self: `/api/v2/users/${user.id}`, sessions: `/api/v1/users/${user.id}/sessions` },
  };
}

function nextPage(query: UsersQueryValues, cursor: string): string {
  const params = new URLSearchParams();
  for (const key of ['limit', 'email', 'role', 'status'] as const) {
    const value = query[key];
    if (value !== undefined) params.set(key, value);
  }
  params.set('cursor', cursor);
  return `/api/v2/users?${params.toString()}`;
}
