import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminToken, assertNoSecrets, postgresAvailable, startIdentityGateway, userToken, type IdentityGateway, type Reply } from './helpers/identity.js';

/**
 * The users API's v2 (`/api/v2/users`): its representation, the same authorization as v1 on both
 * backends, and v1 announcing it (`Link: …; rel="successor-version"`, with `Deprecation` and
 * `Sunset` once `identity.usersApi.v1` dates it, and 410 after its sunset).
 */

const pgUp = await postgresAvailable();
const PROBLEM = 'application/problem+json; charset=utf-8';
type Json = Record<string, unknown>;

function problem(reply: Reply, status: number, code: string): Json {
  expect(reply.status, reply.text).toBe(status);
  expect(reply.headers['content-type']).toBe(PROBLEM);
  const body = reply.json();
  expect(body.code).toBe(code);
  return body;
}

/** What v2 shows of a user, given what v1 shows. */
function asV2(v1: Json): Json {
  return {
    id: v1.id,
    email: v1.email,
    roles: v1.roles,
    account: { status: v1.status, passwordChangeRequired: v1.passwordChangeRequired },
    timestamps: { created: v1.createdAt, updated: v1.updatedAt },
    links: { self: `/api/v2/users/${v1.id as string}`, sessions: `/api/v1/users/${v1.id as string}/sessions` },
  };
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe.skipIf(backend === 'postgres' && !pgUp)(`users API v2 on ${backend}`, () => {
    let id: IdentityGateway;
    let admin: string;
    let alice: { token: string; id: string };
    let bob: { token: string; id: string };
    const call = async (method: string, path: string, token?: string, json?: unknown): Promise<Reply> => {
      const reply = await id.call(method, path, { token, json });
      assertNoSecrets(reply);
      expect(reply.headers['cache-control'], `${method} ${path}`).toBe('no-store');
      return reply;
    };

    beforeAll(async () => {
      id = await startIdentityGateway({ backend, identity: { limits: { login: { limit: 1000 }, register: { limit: 1000 } } } });
      admin = await adminToken(id);
      alice = await userToken(id, 'alice@example.com');
      bob = await userToken(id, 'bob@example.com');
    });
    afterAll(async () => {
      await id?.close();
    });

    it('GET /api/v2/users/{id} shows the same user as v1 in the v2 representation', async () => {
      for (const ref of ['me', alice.id]) {
        const v1 = await call('GET', `/api/v1/users/${ref}`, alice.token);
        const v2 = await call('GET', `/api/v2/users/${ref}`, alice.token);
        expect(v2.status, v2.text).toBe(200);
        expect(v2.headers['content-type']).toBe('application/json; charset=utf-8');
        expect(v2.json()).toEqual(asV2(v1.json()));
        expect(v2.json()).toEqual({
          id: alice.id,
          email: 'alice@example.com',
          roles: ['user'],
          account: { status: 'active', passwordChangeRequired: false },
          timestamps: { created: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/), updated: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/) },
          links: { self: `/api/v2/users/${alice.id}`, sessions: `/api/v1/users/${alice.id}/sessions` },
        });
      }
    });

    it('GET /api/v2/users pages with links.next carrying the filters (admins only)', async () => {
      const all = (await call('GET', '/api/v1/users?limit=100', admin)).json<{ items: Json[] }>().items;
      const seen: Json[] = [];
      let next: string | null = '/api/v2/users?limit=2';
      for (let i = 0; next !== null && i < 20; i++) {
        const page = await call('GET', next, admin);
        expect(page.status, page.text).toBe(200);
        const body = page.json<{ items: Json[]; links: { next: string | null } }>();
        expect(Object.keys(body).sort()).toEqual(['items', 'links']);
        expect(body.items.length).toBeLessThanOrEqual(2);
        seen.push(...body.items);
        if (body.links.next !== null) expect(body.links.next).toMatch(/^\/api\/v2\/users\?limit=2&cursor=[^&]+$/);
        next = body.links.next;
      }
      expect(next).toBeNull();
      expect(seen).toEqual(all.map(asV2));
      const filtered = (await call('GET', '/api/v2/users?limit=1&role=user&email=example', admin)).json<{ items: Json[]; links: { next: string } }>();
      expect(filtered.items).toHaveLength(1);
      expect(filtered.links.next).toMatch(/^\/api\/v2\/users\?limit=1&email=example&role=user&cursor=[^&]+$/);
    });

    it('POST /api/v2/users creates in the v2 representation, with Location under /api/v2', async () => {
      const made = await call('POST', '/api/v2/users', admin, { email: 'Carol@Example.com', roles: ['user'] });
      expect(made.status, made.text).toBe(201);
      const body = made.json();
      expect(made.headers.location).toBe(`/api/v2/users/${body.id as string}`);
      expect(body).toMatchObject({ email: 'carol@example.com', roles: ['user'], account: { status: 'active', passwordChangeRequired: true }, oneTimePassword: expect.stringMatching(/^[A-Za-z0-9]{20}$/) });
      expect(body).not.toHaveProperty('status');
      expect(body).not.toHaveProperty('createdAt');
      problem(await call('POST', '/api/v2/users', admin, { email: 'carol@example.com' }), 409, 'RMP_USER_EXISTS');
    });

    it('PATCH /api/v2/users/{id} takes account.status (admins only) and refuses v1\'s fields by name', async () => {
      const disabled = await call('PATCH', `/api/v2/users/${bob.id}`, admin, { account: { status: 'disabled' } });
      expect(disabled.status, disabled.text).toBe(200);
      expect(disabled.json()).toMatchObject({ id: bob.id, account: { status: 'disabled' } });
      expect((await call('GET', `/api/v1/users/${bob.id}`, admin)).json()).toMatchObject({ status: 'disabled' });
      problem(await call('GET', '/api/v2/users/me', bob.token), 401, 'RMP_AUTH_TOKEN_REVOKED');
      expect((await call('PATCH', `/api/v2/users/${bob.id}`, admin, { account: { status: 'active' } })).json()).toMatchObject({ account: { status: 'active' } });
      bob = await userToken(id, 'bob@example.com');

      const refused = problem(await call('PATCH', '/api/v2/users/me', alice.token, { account: { status: 'disabled' } }), 403, 'RMP_AUTHZ_DENIED');
      expect(refused.fields).toEqual(['account.status']);
      expect(problem(await call('PATCH', '/api/v2/users/me', alice.token, { roles: ['admin'], account: { status: 'active' } }), 403, 'RMP_AUTHZ_DENIED').fields).toEqual(['roles', 'account.status']);
      for (const [body, pointer] of [
        [{ status: 'disabled' }, '/status'],
        [{ account: { status: 'locked' } }, '/account/status'],
        [{ account: { locked: false } }, '/account/locked'],
        [{ account: {} }, '/account'],
        [{ id: 'x' }, '/id'],
      ] as const) {
        const bad = problem(await call('PATCH', '/api/v2/users/me', admin, body), 400, 'RMP_VALIDATION_FAILED');
        expect(bad.errors, JSON.stringify(body)).toContainEqual(expect.objectContaining({ pointer }));
      }
      const proto = await id.call('PATCH', '/api/v2/users/me', { token: admin, body: '{"__proto__":{"roles":["admin"]},"email":"x@example.com"}', headers: { 'content-type': 'application/json' } });
      expect(proto.status, proto.text).toBe(400);
      expect((await call('GET', '/api/v2/users/me', admin)).json()).toMatchObject({ email: 'boss@example.com' });
      // One's own e-mail: re-authenticated, as in v1.
      const unproven = problem(await call('PATCH', '/api/v2/users/me', alice.token, { email: 'alice2@example.com' }), 400, 'RMP_VALIDATION_FAILED');
      expect(unproven.errors).toContainEqual(expect.objectContaining({ pointer: '/currentPassword' }));
      problem(await call('PATCH', '/api/v2/users/me', alice.token, { email: 'alice2@example.com', currentPassword: 'not the password at all' }), 403, 'RMP_PASSWORD_INCORRECT');
      const renamed = await call('PATCH', '/api/v2/users/me', alice.token, { email: 'alice2@example.com', currentPassword: 'a long enough passphrase 7' });
      expect(renamed.status, renamed.text).toBe(200);
      expect(renamed.json()).toMatchObject({ id: alice.id, email: 'alice2@example.com', links: { self: `/api/v2/users/${alice.id}` } });
    });

    it('enforces the same authorization as v1: admins for the collection, the owner or an admin for a user', async () => {
      const other = bob.id;
      const cases: [string, string, string | undefined, unknown, number, string | undefined][] = [
        ['GET', '/api/v2/users', undefined, undefined, 401, 'RMP_AUTH_REQUIRED'],
        ['GET', '/api/v2/users/me', undefined, undefined, 401, 'RMP_AUTH_REQUIRED'],
        ['DELETE', `/api/v2/users/${other}`, undefined, undefined, 401, 'RMP_AUTH_REQUIRED'],
        ['GET', '/api/v2/users', alice.token, undefined, 403, 'RMP_AUTHZ_DENIED'],
        ['POST', '/api/v2/users', alice.token, { email: 'sneaky@example.com', roles: ['admin'] }, 403, 'RMP_AUTHZ_DENIED'],
        ['GET', `/api/v2/users/${other}`, alice.token, undefined, 404, 'RMP_OBJECT_NOT_FOUND'],
        ['PATCH', `/api/v2/users/${other}`, alice.token, { email: 'stolen@example.com' }, 404, 'RMP_OBJECT_NOT_FOUND'],
        ['DELETE', `/api/v2/users/${other}`, alice.token, undefined, 404, 'RMP_OBJECT_NOT_FOUND'],
        ['GET', `/api/v2/users/${randomUUID()}`, admin, undefined, 404, 'RMP_OBJECT_NOT_FOUND'],
        ['GET', `/api/v2/users/${other}`, admin, undefined, 200, undefined],
        ['GET', '/api/v2/users/me', alice.token, undefined, 200, undefined],
      ];
      for (const [method, path, token, body, status, code] of cases) {
        const label = `${token === undefined ? 'anonymous' : token === admin ? 'admin' : 'user'} ${method} ${path}`;
        // The v1 twin answers the same status and code.
        const twin = await call(method, path.replace('/api/v2/', '/api/v1/'), token, body);
        const reply = await call(method, path, token, body);
        expect(reply.status, label).toBe(status);
        expect(twin.status, `v1 of ${label}`).toBe(status);
        if (code !== undefined) {
          problem(reply, status, code);
          expect(twin.json().code).toBe(code);
          if (status === 401) expect(reply.headers['www-authenticate']).toMatch(/^Bearer/);
        }
      }
      // Still there: the refusals changed nothing.
      expect((await call('GET', `/api/v2/users/${other}`, admin)).json()).toMatchObject({ id: other, account: { status: 'active' } });
      const doomed = (await call('POST', '/api/v2/users', admin, { email: 'doomed@example.com' })).json<{ id: string }>();
      expect((await call('DELETE', `/api/v2/users/${doomed.id}`, admin)).status).toBe(204);
      problem(await call('GET', `/api/v2/users/${doomed.id}`, admin), 404, 'RMP_OBJECT_NOT_FOUND');
    });

    it('v1 announces v2 on every answer (Link successor-version, same path under /api/v2), without Deprecation by default', async () => {
      for (const [path, token, status, successor] of [
        ['/api/v1/users/me', alice.token, 200, '/api/v2/users/me'],
        [`/api/v1/users/${alice.id}`, admin, 200, `/api/v2/users/${alice.id}`],
        ['/api/v1/users', admin, 200, '/api/v2/users'],
        ['/api/v1/users', alice.token, 403, '/api/v2/users'],
        ['/api/v1/users/me', undefined, 401, '/api/v2/users/me'],
      ] as const) {
        const reply = await call('GET', path, token);
        expect(reply.status, path).toBe(status);
        expect(reply.headers.link, path).toBe(`<${successor}>; rel="successor-version"`);
        expect(reply.headers.deprecation, path).toBeUndefined();
        expect(reply.headers.sunset, path).toBeUndefined();
      }
      // v2 itself, and the unversioned sub-resources and auth endpoints, announce nothing.
      for (const path of ['/api/v2/users/me', '/api/v1/users/me/sessions']) {
        const reply = await call('GET', path, alice.token);
        expect(reply.status, path).toBe(200);
        expect(reply.headers.link, path).toBeUndefined();
      }
    });
  });
}

describe('users API v1 deprecated and retired by identity.usersApi.v1', () => {
  const DOCS = 'https://docs.example.com/users-v2';
  let id: IdentityGateway | undefined;
  afterAll(async () => {
    await id?.close();
  });

  it('a deprecated v1 (dated in the config, applied on reload) sends Deprecation, Sunset and both Links on successes and refusals; v2 none', async () => {
    id = await startIdentityGateway({ backend: 'sqlite' });
    const admin = await adminToken(id);
    const before = await id.call('GET', '/api/v1/users', { token: admin });
    expect(before.headers.link).toBe('</api/v2/users>; rel="successor-version"');
    expect(before.headers.deprecation).toBeUndefined();
    // Dates either side of any time this test runs: deprecated since mid-2026, sunset in 2099.
    const config = parse(readFileSync(id.gw.configFile, 'utf8')) as { identity: Record<string, unknown> };
    config.identity.usersApi = { v1: { deprecated: '2026-06-01T00:00:00Z', sunset: '2099-01-01T00:00:00Z', link: DOCS } };
    writeFileSync(id.gw.configFile, stringify(config));
    expect(await id.gw.runtime.reload()).toMatchObject({ ok: true });
    for (const [method, path, token, status] of [
      ['GET', '/api/v1/users', admin, 200],
      ['GET', '/api/v1/users/me', admin, 200],
      ['GET', '/api/v1/users', undefined, 401],
      ['DELETE', `/api/v1/users/${randomUUID()}`, admin, 404],
    ] as const) {
      const reply = await id.call(method, path, { token });
      expect(reply.status, `${method} ${path}`).toBe(status);
      expect(reply.headers.deprecation).toBe('@1780272000');
      expect(reply.headers.sunset).toBe('Thu, 01 Jan 2099 00:00:00 GMT');
      expect(reply.headers.link).toBe(`<${path.replace('/api/v1/', '/api/v2/')}>; rel="successor-version", <${DOCS}>; rel="deprecation"`);
    }
    const v2 = await id.call('GET', '/api/v2/users/me', { token: admin });
    expect(v2.status).toBe(200);
    for (const name of ['deprecation', 'sunset', 'link']) expect(v2.headers[name], name).toBeUndefined();
    await id.close();
    id = undefined;
  });

  it('after its sunset, v1 answers 410 RMP_VERSION_RETIRED before authentication and changes nothing; v2 and the rest of /api/v1 go on', async () => {
    id = await startIdentityGateway({ backend: 'sqlite', identity: { usersApi: { v1: { deprecated: '2026-01-01T00:00:00Z', sunset: '2026-02-01T00:00:00Z' } } } });
    expect(id.gw.logs.lines.map((l) => String(l.msg))).toContainEqual(expect.stringMatching(/config warning: .*identity\.usersApi\.v1\.sunset: the users API v1 \(\/api\/v1\/users\) is past its sunset: its routes answer 410 RMP_VERSION_RETIRED$/));
    const admin = await adminToken(id);
    for (const [method, path, token, json] of [
      ['GET', '/api/v1/users', undefined, undefined],
      ['POST', '/api/v1/users', admin, { email: 'late@example.com' }],
      ['GET', '/api/v1/users/me', admin, undefined],
      ['DELETE', '/api/v1/users/me', admin, undefined],
    ] as const) {
      const reply = await id.call(method, path, { token, json });
      const body = problem(reply, 410, 'RMP_VERSION_RETIRED');
      const successor = path.replace('/api/v1/', '/api/v2/');
      expect(body).toMatchObject({ sunset: '2026-02-01T00:00:00.000Z', successor });
      expect(reply.headers.sunset).toBe('Sun, 01 Feb 2026 00:00:00 GMT');
      expect(reply.headers.deprecation).toBe('@1767225600');
      expect(reply.headers.link).toBe(`<${successor}>; rel="successor-version"`);
      expect(reply.headers['www-authenticate']).toBeUndefined();
    }
    const users = await id.call('GET', '/api/v2/users', { token: admin });
    expect(users.status).toBe(200);
    expect(users.json<{ items: { email: string }[] }>().items.map((u) => u.email)).toEqual(['boss@example.com']);
    expect((await id.call('GET', '/api/v2/users/me', { token: admin })).status).toBe(200);
    expect((await id.call('GET', '/api/v1/users/me/sessions', { token: admin })).status).toBe(200);
  });
});
