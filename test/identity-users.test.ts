import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertNoSecrets, postgresAvailable, startIdentityGateway, type IdentityGateway, type Reply } from './helpers/identity.js';

/**
 * The users API's authorization matrix (role × owner/other × method × field), on both backends,
 * against one gateway per backend. Every answer is checked for secrets and for `no-store`.
 * Cases that revoke or delete an account run on fresh accounts, so the shared sessions survive.
 */

const pgUp = await postgresAvailable();
const PW = 'plum vivid orbit lantern 93';
const PW2 = 'quartz meadow tundra falcon 58';
const PROBLEM = 'application/problem+json; charset=utf-8';

type Role = 'admin' | 'user';
interface Session {
  id: string;
  email: string;
  token: string;
}
interface Page {
  items: { id: string; email: string; roles: string[] }[];
  nextCursor: string | null;
}
type Json = Record<string, unknown>;
interface Case {
  actor: Role | 'anonymous';
  /** self: the actor's id; me: the `me` alias; other: another user; missing: an id nobody has. */
  target: 'self' | 'me' | 'other' | 'missing';
  method: string;
  /** `{id}` is replaced by the target's id. */
  path: string;
  body?: unknown;
  status: number;
  code?: string;
  /** `fields` of a 403, or a pointer the 400's `errors` must name. */
  fields?: string[];
  pointer?: string;
  /** The case revokes or deletes: it runs with a fresh account as the actor (self) or the target (other). */
  fresh?: boolean;
  /** Effects to check afterwards. */
  after?: (s: { actor: Session; target: Session; reply: Reply; json: Json }) => unknown;
}

const USER = '/api/v1/users/{id}';
const c = (actor: Case['actor'], target: Case['target'], method: string, path: string, body: unknown, status: number, code?: string, more: Partial<Case> = {}): Case => ({ actor, target, method, path, body, status, code, ...more });

for (const backend of ['sqlite', 'postgres'] as const) {
  describe.skipIf(backend === 'postgres' && !pgUp)(`users API authorization matrix on ${backend}`, () => {
    let id: IdentityGateway;
    let admin: Session;
    let alice: Session;
    let bob: Session;
    let n = 0;
    /** In the tests (not in beforeAll), a missing `no-store` is a soft failure: the other checks still run. */
    let soft = false;

    /** Every call: no secret in any body, and no cache may keep any users/auth answer. */
    const call = async (method: string, path: string, token?: string, json?: unknown): Promise<Reply> => {
      const reply = await id.call(method, path, { token, json });
      assertNoSecrets(reply);
      (soft ? expect.soft : expect)(reply.headers['cache-control'], `${method} ${path} → ${reply.status}`).toBe('no-store');
      return reply;
    };
    const expectProblem = (reply: Reply, status: number, code: string): Json => {
      expect(reply.status, reply.text).toBe(status);
      expect(reply.headers['content-type']).toBe(PROBLEM);
      const body = reply.json();
      expect(body.code).toBe(code);
      return body;
    };
    const refused = async (token: string) => expectProblem(await call('GET', '/api/v1/users/me', token), 401, 'RMP_AUTH_TOKEN_REVOKED');
    const login = async (email: string, password = PW): Promise<Session> => {
      const r = await call('POST', '/api/v1/auth/login', undefined, { email, password });
      expect(r.status, r.text).toBe(200);
      const token = r.json<{ access_token: string }>().access_token;
      const me = await call('GET', '/api/v1/users/me', token);
      expect(me.status).toBe(200);
      return { id: me.json<{ id: string }>().id, email, token };
    };
    /** A new account made by the admin, logged in. */
    const fresh = async (role: Role): Promise<Session> => {
      const email = `fresh${++n}@example.com`;
      const made = await call('POST', '/api/v1/users', admin.token, { email, roles: [role], password: PW });
      expect(made.status, made.text).toBe(201);
      return login(email);
    };

    beforeAll(async () => {
      id = await startIdentityGateway({ backend, identity: { limits: { login: { limit: 1000 } } } });
      const boot = await id.gw.runtime.identity!.service.bootstrapAdmin('admin@example.com');
      const first = expectProblem(await call('POST', '/api/v1/auth/login', undefined, { email: 'admin@example.com', password: boot.oneTimePassword }), 403, 'RMP_PASSWORD_CHANGE_REQUIRED');
      const changed = await call('POST', '/api/v1/auth/password', undefined, { passwordChangeToken: first.passwordChangeToken, newPassword: PW });
      expect(changed.status, changed.text).toBe(200);
      for (const email of ['alice@example.com', 'bob@example.com']) expect((await call('POST', '/api/v1/auth/register', undefined, { email, password: PW })).status).toBe(202);
      admin = await login('admin@example.com');
      expect(admin.id).toBe(boot.id);
      alice = await login('alice@example.com');
      bob = await login('bob@example.com');
      soft = true;
    });
    afterAll(async () => {
      await id?.close();
    });

    const gone = async ({ target }: { target: Session }) => {
      expectProblem(await call('GET', `/api/v1/users/${target.id}`, admin.token), 404, 'RMP_OBJECT_NOT_FOUND');
      await refused(target.token);
    };
    const passwordChanged = async ({ actor, json }: { actor: Session; json: Json }) => {
      await refused(actor.token);
      expect((await call('GET', '/api/v1/users/me', json.access_token as string)).status).toBe(200);
      expect((await call('POST', '/api/v1/auth/login', undefined, { email: actor.email, password: PW2 })).status).toBe(200);
    };

    const cases: Case[] = [
      // No token: 401 with a Bearer challenge, whatever the route.
      ...(['GET /api/v1/users/me', 'GET /api/v1/users', `PATCH ${USER}`, `DELETE ${USER}`, 'PUT /api/v1/users/{id}/password', 'GET /api/v1/audit'] as const).map((mp) => {
        const [method, path] = mp.split(' ') as [string, string];
        return c('anonymous', 'other', method, path, method === 'PATCH' ? { email: 'x@example.com' } : undefined, 401, 'RMP_AUTH_REQUIRED');
      }),
      // GET one user: own record for both roles; another's only for admins (404 otherwise, like a missing id).
      c('admin', 'self', 'GET', USER, undefined, 200),
      c('admin', 'me', 'GET', USER, undefined, 200),
      c('admin', 'other', 'GET', USER, undefined, 200),
      c('admin', 'missing', 'GET', USER, undefined, 404, 'RMP_OBJECT_NOT_FOUND'),
      c('user', 'self', 'GET', USER, undefined, 200),
      c('user', 'me', 'GET', USER, undefined, 200),
      c('user', 'other', 'GET', USER, undefined, 404, 'RMP_OBJECT_NOT_FOUND'),
      c('user', 'missing', 'GET', USER, undefined, 404, 'RMP_OBJECT_NOT_FOUND'),
      // PATCH email.
      c('admin', 'self', 'PATCH', USER, { email: 'admin-renamed@example.com' }, 200),
      c('admin', 'other', 'PATCH', USER, { email: 'bob-renamed@example.com' }, 200),
      c('admin', 'missing', 'PATCH', USER, { email: 'nobody@example.com' }, 404, 'RMP_OBJECT_NOT_FOUND'),
      // A user changing their own sign-in address re-authenticates with the current password.
      c('user', 'self', 'PATCH', USER, { email: 'alice-renamed@example.com', currentPassword: PW }, 200),
      c('user', 'me', 'PATCH', USER, { email: 'alice-again@example.com', currentPassword: PW }, 200),
      c('user', 'self', 'PATCH', USER, { email: 'alice-unproven@example.com' }, 400, 'RMP_VALIDATION_FAILED', { pointer: '/currentPassword' }),
      c('user', 'self', 'PATCH', USER, { email: 'alice-guess@example.com', currentPassword: 'not the password at all' }, 403, 'RMP_PASSWORD_INCORRECT'),
      c('user', 'other', 'PATCH', USER, { email: 'stolen@example.com' }, 404, 'RMP_OBJECT_NOT_FOUND'),
      // PATCH roles: admins only; new roles end the old sessions.
      c('admin', 'self', 'PATCH', USER, { roles: ['admin', 'ops'] }, 200, undefined, { fresh: true, after: ({ actor }) => refused(actor.token) }),
      c('admin', 'other', 'PATCH', USER, { roles: ['user'] }, 200),
      c('user', 'self', 'PATCH', USER, { roles: ['admin'] }, 403, 'RMP_AUTHZ_DENIED', { fields: ['roles'] }),
      c('user', 'other', 'PATCH', USER, { roles: ['admin'] }, 404, 'RMP_OBJECT_NOT_FOUND'),
      // PATCH status: admins only; disabling ends the sessions and refuses login.
      c('admin', 'self', 'PATCH', USER, { status: 'active' }, 200),
      c('admin', 'other', 'PATCH', USER, { status: 'disabled' }, 200, undefined, {
        fresh: true,
        after: async ({ target }) => {
          await refused(target.token);
          expectProblem(await call('POST', '/api/v1/auth/login', undefined, { email: target.email, password: PW }), 401, 'RMP_LOGIN_FAILED');
        },
      }),
      c('admin', 'other', 'PATCH', USER, { status: 'active' }, 200),
      c('user', 'self', 'PATCH', USER, { status: 'disabled' }, 403, 'RMP_AUTHZ_DENIED', { fields: ['status'] }),
      c('user', 'self', 'PATCH', USER, { roles: ['admin'], status: 'active' }, 403, 'RMP_AUTHZ_DENIED', { fields: ['roles', 'status'] }),
      c('user', 'other', 'PATCH', USER, { status: 'active' }, 404, 'RMP_OBJECT_NOT_FOUND'),
      // Mass assignment: unknown and read-only fields are refused by name; someone else's record is 404 first.
      ...['isAdmin', 'id', 'passwordHash', 'createdAt'].flatMap((field) => [
        c('admin', 'self', 'PATCH', USER, { [field]: field === 'isAdmin' ? true : 'x' }, 400, 'RMP_VALIDATION_FAILED', { pointer: `/${field}` }),
        c('admin', 'other', 'PATCH', USER, { email: 'bob-masked@example.com', [field]: field === 'isAdmin' ? true : 'x' }, 400, 'RMP_VALIDATION_FAILED', { pointer: `/${field}` }),
        c('user', 'self', 'PATCH', USER, { [field]: field === 'isAdmin' ? true : 'x' }, 400, 'RMP_VALIDATION_FAILED', { pointer: `/${field}` }),
        c('user', 'other', 'PATCH', USER, { [field]: 'x' }, 404, 'RMP_OBJECT_NOT_FOUND'),
      ]),
      c('admin', 'self', 'PATCH', USER, {}, 400, 'RMP_VALIDATION_FAILED'),
      c('admin', 'other', 'PATCH', USER, {}, 400, 'RMP_VALIDATION_FAILED'),
      c('user', 'self', 'PATCH', USER, {}, 400, 'RMP_VALIDATION_FAILED'),
      c('user', 'other', 'PATCH', USER, {}, 404, 'RMP_OBJECT_NOT_FOUND'),
      // DELETE: the owner may delete their own account; admins any; the account's tokens die with it.
      c('admin', 'self', 'DELETE', USER, undefined, 204, undefined, { fresh: true, after: gone }),
      c('admin', 'other', 'DELETE', USER, undefined, 204, undefined, { fresh: true, after: gone }),
      c('admin', 'missing', 'DELETE', USER, undefined, 404, 'RMP_OBJECT_NOT_FOUND'),
      c('user', 'self', 'DELETE', USER, undefined, 204, undefined, { fresh: true, after: gone }),
      c('user', 'other', 'DELETE', USER, undefined, 404, 'RMP_OBJECT_NOT_FOUND', {
        fresh: true,
        after: async ({ target }) => expect((await call('GET', `/api/v1/users/${target.id}`, admin.token)).status).toBe(200),
      }),
      // The collection: admins only.
      c('admin', 'self', 'GET', '/api/v1/users', undefined, 200, undefined, { after: ({ json }) => expect(json).toEqual({ items: expect.any(Array), nextCursor: null }) }),
      c('user', 'self', 'GET', '/api/v1/users', undefined, 403, 'RMP_AUTHZ_DENIED'),
      c('admin', 'self', 'POST', '/api/v1/users', { email: 'Created@Example.com', roles: ['user'] }, 201, undefined, {
        after: ({ reply, json }) => {
          expect(reply.headers.location).toBe(`/api/v1/users/${json.id as string}`);
          expect(json).toMatchObject({ email: 'created@example.com', roles: ['user'], status: 'active', passwordChangeRequired: true, oneTimePassword: expect.stringMatching(/^[A-Za-z0-9]{20}$/) });
        },
      }),
      c('admin', 'self', 'POST', '/api/v1/users', { email: 'created@example.com' }, 409, 'RMP_USER_EXISTS'),
      c('user', 'self', 'POST', '/api/v1/users', { email: 'sneaky@example.com', roles: ['admin'] }, 403, 'RMP_AUTHZ_DENIED'),
      // Password change: only the owner, with the current password; every older token dies.
      c('admin', 'self', 'PUT', '/api/v1/users/{id}/password', { currentPassword: PW, newPassword: PW2 }, 200, undefined, { fresh: true, after: passwordChanged }),
      c('user', 'self', 'PUT', '/api/v1/users/{id}/password', { currentPassword: PW, newPassword: PW2 }, 200, undefined, { fresh: true, after: passwordChanged }),
      c('user', 'me', 'PUT', '/api/v1/users/{id}/password', { currentPassword: 'not the password at all', newPassword: PW2 }, 403, 'RMP_PASSWORD_INCORRECT'),
      c('admin', 'other', 'PUT', '/api/v1/users/{id}/password', { currentPassword: PW, newPassword: PW2 }, 404, 'RMP_OBJECT_NOT_FOUND'),
      c('user', 'other', 'PUT', '/api/v1/users/{id}/password', { currentPassword: PW, newPassword: PW2 }, 404, 'RMP_OBJECT_NOT_FOUND'),
      // Password reset: admins only; a one-time password, old tokens refused, login demands a change.
      c('admin', 'other', 'POST', '/api/v1/users/{id}/password-reset', undefined, 200, undefined, {
        fresh: true,
        after: async ({ target, json }) => {
          expect(json).toEqual({ oneTimePassword: expect.stringMatching(/^[A-Za-z0-9]{20}$/), passwordChangeRequired: true });
          await refused(target.token);
          const otp = await call('POST', '/api/v1/auth/login', undefined, { email: target.email, password: json.oneTimePassword });
          expect(expectProblem(otp, 403, 'RMP_PASSWORD_CHANGE_REQUIRED').passwordChangeToken).toEqual(expect.any(String));
          expectProblem(await call('POST', '/api/v1/auth/login', undefined, { email: target.email, password: PW }), 401, 'RMP_LOGIN_FAILED');
        },
      }),
      c('admin', 'missing', 'POST', '/api/v1/users/{id}/password-reset', undefined, 404, 'RMP_OBJECT_NOT_FOUND'),
      c('user', 'other', 'POST', '/api/v1/users/{id}/password-reset', undefined, 403, 'RMP_AUTHZ_DENIED'),
      c('user', 'self', 'POST', '/api/v1/users/{id}/password-reset', undefined, 403, 'RMP_AUTHZ_DENIED'),
      // The audit trail: admins only; it recorded the refusals above.
      c('admin', 'self', 'GET', '/api/v1/audit?type=authz_fail', undefined, 200, undefined, {
        after: ({ json }) => expect((json.items as { actor: string }[]).map((e) => e.actor)).toContain(alice.id),
      }),
      c('user', 'self', 'GET', '/api/v1/audit', undefined, 403, 'RMP_AUTHZ_DENIED'),
    ];

    for (const k of cases) {
      const label = `${k.actor} ${k.method} ${k.path.replace('{id}', `{${k.target}}`)}${k.body === undefined ? '' : ` ${JSON.stringify(k.body)}`} → ${k.status}${k.code === undefined ? '' : ` ${k.code}`}`;
      it(label, async () => {
        let actor = k.actor === 'admin' ? admin : alice;
        let target = k.target === 'other' ? bob : actor;
        if (k.fresh && k.target === 'self') actor = target = await fresh(k.actor as Role);
        if (k.fresh && k.target === 'other') target = await fresh('user');
        const ref = k.target === 'me' ? 'me' : k.target === 'missing' ? randomUUID() : target.id;
        const reply = await call(k.method, k.path.replace('{id}', ref), k.actor === 'anonymous' ? undefined : actor.token, k.body);
        expect(reply.status, reply.text).toBe(k.status);
        const json: Json = reply.text === '' ? {} : reply.json();
        if (k.code !== undefined) {
          expectProblem(reply, k.status, k.code);
          if (k.fields !== undefined) expect(json.fields).toEqual(k.fields);
          if (k.pointer !== undefined) expect(json.errors).toContainEqual(expect.objectContaining({ pointer: k.pointer }));
          if (k.status === 401) expect(reply.headers['www-authenticate']).toMatch(/^Bearer/);
        } else if (k.status === 200 && k.method === 'GET' && k.path === USER) {
          expect(json).toMatchObject({ id: target.id, roles: k.actor === 'admin' && k.target !== 'other' ? ['admin'] : ['user'] });
        } else if (k.status === 200 && k.method === 'PATCH') {
          // What was written comes back (the re-authentication password never does).
          const { currentPassword: _proof, ...written } = k.body as Json;
          expect(json).toMatchObject({ id: target.id, ...written });
          expect(json).not.toHaveProperty('currentPassword');
        }
        await k.after?.({ actor, target, reply, json });
      });
    }

    /** Follows `nextCursor` from the first page to the last; every id seen, in order. */
    const allPages = async (query: string): Promise<string[]> => {
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let i = 0; i < 50; i++) {
        const r = await call('GET', `/api/v1/users?${query}${cursor === null ? '' : `&cursor=${cursor}`}`, admin.token);
        expect(r.status, r.text).toBe(200);
        const page = r.json<Page>();
        expect(page.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.items.map((u) => u.id));
        cursor = page.nextCursor;
        if (cursor === null) return seen;
      }
      throw new Error('nextCursor never ended');
    };
    const everyone = async () => (await call('GET', '/api/v1/users?limit=100', admin.token)).json<Page>().items;

    it('GET /api/v1/users?limit=2 pages through every user exactly once; ?email= filters by part', async () => {
      const all = await everyone();
      expect(all.length).toBeGreaterThanOrEqual(5);
      const seen = await allPages('limit=2');
      expect(seen).toHaveLength(new Set(seen).size);
      expect([...seen].sort()).toEqual(all.map((u) => u.id).sort());
      const filtered = await call('GET', '/api/v1/users?email=ALICE', admin.token);
      expect(filtered.status).toBe(200);
      expect(filtered.json<Page>().items.map((u) => u.id)).toEqual([alice.id]);
      expect(all.filter((u) => u.email.includes('alice')).map((u) => u.id)).toEqual([alice.id]);
    });

    it('GET /api/v1/users?role=user&limit=2 pages through every user of the role exactly once', async () => {
      const users = (await everyone()).filter((u) => u.roles.includes('user')).map((u) => u.id);
      expect(users.length).toBeGreaterThanOrEqual(3);
      const seen = await allPages('role=user&limit=2');
      expect(seen).toHaveLength(new Set(seen).size);
      expect([...seen].sort()).toEqual(users.sort());
    });

    it('GET /api/v1/users?email= takes "_" and "%" literally', async () => {
      for (const email of ['under_score@example.com', 'per%cent@example.com']) expect((await call('POST', '/api/v1/users', admin.token, { email })).status).toBe(201);
      const emails = async (part: string) => (await call('GET', `/api/v1/users?email=${encodeURIComponent(part)}`, admin.token)).json<Page>().items.map((u) => u.email);
      expect(await emails('under_')).toEqual(['under_score@example.com']);
      expect(await emails('_')).toEqual(['under_score@example.com']);
      expect(await emails('per%c')).toEqual(['per%cent@example.com']);
    });
  });
}
