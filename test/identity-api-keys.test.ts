import { afterEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { startUpstream, type TestUpstream } from './helpers/gateway.js';
import { adminToken, assertNoSecrets, postgresAvailable, startIdentityGateway, userToken, type IdentityGateway, type Reply } from './helpers/identity.js';
import { newCredential } from '../src/identity/credentials.js';

/** API keys of the identity service (issue 7, item 1), made over the API and used at the gateway. */
const pgUp = await postgresAvailable();
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

const KEY = /^rmp_live_[0-9A-Za-z]{49}$/;

interface KeyAnswer {
  id: string;
  key: string;
  prefix: string;
  scopes: string[];
  status: string;
  userId: string;
  expiresAt: string;
  lastUsedAt: string | null;
}

async function setup(backend: 'sqlite' | 'postgres'): Promise<{ id: IdentityGateway; upstream: TestUpstream }> {
  const upstream = await startUpstream();
  open.push(upstream);
  const id = await startIdentityGateway({
    backend,
    identity: { scopes: { user: ['notes:read', 'notes:write'], admin: ['notes:read', 'notes:write', 'users:admin'] } },
    upstreams: { notes: { targets: [{ url: upstream.url }] } },
    routes: [
      {
        name: 'notes',
        match: { path: '/api/notes/*' },
        upstream: 'notes',
        policies: { 'api-key': { identity: true }, authorize: { scopes: { all: ['notes:read'] } } },
      },
    ],
  });
  open.push(id);
  return { id, upstream };
}

const withKey = (id: IdentityGateway, key: string, path = '/api/notes/1') => id.call('GET', path, { headers: { 'x-api-key': key } });
const refusal = (r: Reply) => [r.status, r.json().code, r.headers['www-authenticate']];
const CHALLENGE = 'ApiKey realm="rampart", header="x-api-key"';

for (const backend of ['sqlite', 'postgres'] as const) {
  describe.skipIf(backend === 'postgres' && !pgUp)(`API keys on ${backend}`, () => {
    it('a key is shown once, stored only as an HMAC, works at the gateway as its owner, and is refused on the next request after its revocation', async () => {
      const { id, upstream } = await setup(backend);
      const ada = await userToken(id, 'ada@example.com');
      const made = await id.call('POST', '/api/v1/api-keys', { token: ada.token, json: { name: 'reporting job', scopes: ['notes:read'], expiresIn: '30d' } });
      expect(made.status).toBe(201);
      expect(made.headers['cache-control']).toBe('no-store');
      assertNoSecrets(made);
      const key = made.json<KeyAnswer>();
      expect(key.key).toMatch(KEY);
      expect(key).toMatchObject({ scopes: ['notes:read'], status: 'active', userId: ada.id, prefix: key.key.slice(0, 17), lastUsedAt: null });
      expect(made.headers.location).toBe(`/api/v1/api-keys/${key.id}`);
      expect(Date.parse(key.expiresAt) - Date.now()).toBeGreaterThan(29 * 86_400_000);

      // Shown once: no later answer has it, and the database holds only an HMAC of it.
      const shown = await id.call('GET', `/api/v1/api-keys/${key.id}`, { token: ada.token });
      expect(shown.status).toBe(200);
      expect(shown.text).not.toContain(key.key);
      expect(shown.json()).not.toHaveProperty('key');
      const listed = await id.call('GET', '/api/v1/api-keys', { token: ada.token });
      expect(listed.json<{ items: { id: string }[] }>().items.map((k) => k.id)).toEqual([key.id]);
      expect(listed.text).not.toContain(key.key);
      const db = id.gw.runtime.identity!.storage.db;
      const row = await db.selectFrom('api_keys').selectAll().where('id', '=', key.id).executeTakeFirstOrThrow();
      expect(row.key_hash).toMatch(/^[\w-]{43}$/);
      expect(JSON.stringify(row)).not.toContain(key.key.slice(9, 40));
      expect(row.prefix).toBe(key.key.slice(0, 17));

      // At the gateway: the owner's id, the key's id and scopes; the key never goes upstream.
      const used = await withKey(id, key.key);
      expect(used.status).toBe(200);
      const seen = upstream.requests.at(-1)!;
      expect(seen.headers).toMatchObject({ 'x-consumer-id': ada.id, 'x-consumer-type': 'apiKey', 'x-consumer-key': key.id, 'x-consumer-scopes': 'notes:read' });
      expect(seen.headers['x-api-key']).toBeUndefined();
      expect(JSON.stringify(seen.headers)).not.toContain(key.key);
      // Its last use is recorded (in batches, written before a listing).
      expect((await id.call('GET', `/api/v1/api-keys/${key.id}`, { token: ada.token })).json<KeyAnswer>().lastUsedAt).not.toBeNull();

      // Revoked: the next request is refused, and never reaches the upstream.
      const before = upstream.requests.length;
      expect((await id.call('DELETE', `/api/v1/api-keys/${key.id}`, { token: ada.token })).status).toBe(204);
      expect(refusal(await withKey(id, key.key))).toEqual([401, 'RMP_AUTH_TOKEN_REVOKED', CHALLENGE]);
      expect(upstream.requests.length).toBe(before);
      expect((await id.call('GET', `/api/v1/api-keys/${key.id}`, { token: ada.token })).json<KeyAnswer>().status).toBe('revoked');
      expect((await id.call('DELETE', `/api/v1/api-keys/${key.id}`, { token: ada.token })).status).toBe(204);

      // Audited, with the key's id and never the key.
      await id.gw.runtime.identity!.audit.flush();
      const audit = await db.selectFrom('audit_events').selectAll().where('type', 'in', ['authn_token_created', 'authn_token_revoked']).execute();
      expect(audit.filter((e) => e.data?.includes(key.id)).map((e) => e.type)).toEqual(['authn_token_created', 'authn_token_revoked']);
      expect(JSON.stringify(audit)).not.toContain(key.key);
    });

    it('a key never grants more than its creator has: scopes beyond it are refused with 403, nothing made', async () => {
      const { id } = await setup(backend);
      const ada = await userToken(id, 'ada@example.com');
      const admin = await adminToken(id);
      const beyond = await id.call('POST', '/api/v1/api-keys', { token: ada.token, json: { name: 'too much', scopes: ['notes:read', 'users:admin'] } });
      expect([beyond.status, beyond.json().code, beyond.json().scopes]).toEqual([403, 'RMP_SCOPE_EXCEEDED', ['users:admin']]);
      // An admin making a key for Ada is bounded by Ada's scopes too.
      const forAda = await id.call('POST', '/api/v1/api-keys', { token: admin, json: { name: 'for ada', userId: ada.id, scopes: ['users:admin'] } });
      expect([forAda.status, forAda.json().code]).toEqual([403, 'RMP_SCOPE_EXCEEDED']);
      const db = id.gw.runtime.identity!.storage.db;
      expect(await db.selectFrom('api_keys').selectAll().execute()).toEqual([]);
      // Without scopes, everything the creator may give.
      const all = await id.call('POST', '/api/v1/api-keys', { token: ada.token, json: { name: 'all mine' } });
      expect(all.json<KeyAnswer>().scopes).toEqual(['notes:read', 'notes:write']);
      // Another user's id is not the user's to use; expiry past the maximum is refused.
      const bob = await userToken(id, 'bob@example.com');
      const forBob = await id.call('POST', '/api/v1/api-keys', { token: ada.token, json: { name: 'x', userId: bob.id } });
      expect([forBob.status, forBob.json().code]).toEqual([403, 'RMP_AUTHZ_DENIED']);
      const forever = await id.call('POST', '/api/v1/api-keys', { token: ada.token, json: { name: 'x', expiresIn: '400d' } });
      expect([forever.status, forever.json().code]).toEqual([400, 'RMP_VALIDATION_FAILED']);
      // Mass assignment: a field the API does not take is refused by name.
      const sneaky = await id.call('POST', '/api/v1/api-keys', { token: ada.token, json: { name: 'x', status: 'active', key_hash: 'x' } });
      expect(sneaky.status).toBe(400);
      expect(sneaky.json<{ errors: { pointer: string }[] }>().errors.map((e) => e.pointer).sort()).toEqual(['/key_hash', '/status']);
      // The owner is in the body, never the query (a query is refused, not ignored).
      const queried = await id.call('POST', `/api/v1/api-keys?userId=${bob.id}`, { token: ada.token, json: { name: 'x' } });
      expect([queried.status, queried.json<{ errors: { pointer: string }[] }>().errors[0]!.pointer]).toEqual([400, '/query/userId']);
      // Creating a key takes an access token of this service: not an API key.
      const keyed = await id.call('POST', '/api/v1/api-keys', { headers: { 'x-api-key': all.json<KeyAnswer>().key }, json: { name: 'x' } });
      expect(keyed.status).toBe(401);
    });

    it('refuses expired, made-up, mistyped, other-environment and query-string keys with 401, none forwarded', async () => {
      const { id, upstream } = await setup(backend);
      const ada = await userToken(id, 'ada@example.com');
      const key = (await id.call('POST', '/api/v1/api-keys', { token: ada.token, json: { name: 'soon gone' } })).json<KeyAnswer>();
      const db = id.gw.runtime.identity!.storage.db;
      await db.updateTable('api_keys').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', key.id).execute();
      expect(refusal(await withKey(id, key.key))).toEqual([401, 'RMP_AUTH_TOKEN_EXPIRED', CHALLENGE]);
      expect((await id.call('GET', `/api/v1/api-keys/${key.id}`, { token: ada.token })).json<KeyAnswer>().status).toBe('expired');

      const flipped = key.key.slice(0, 20) + (key.key[20] === 'a' ? 'b' : 'a') + key.key.slice(21);
      for (const bad of [newCredential('apiKey', 'live'), newCredential('apiKey', 'test'), flipped, `${key.key}x`, 'rmp_live_' + 'A'.repeat(49)]) {
        expect(refusal(await withKey(id, bad)), bad).toEqual([401, 'RMP_AUTH_TOKEN_INVALID', CHALLENGE]);
      }
      const live = (await id.call('POST', '/api/v1/api-keys', { token: ada.token, json: { name: 'ok' } })).json<KeyAnswer>();
      const inQuery = await id.call('GET', `/api/notes/1?api_key=${live.key}`, { headers: { 'x-api-key': live.key } });
      expect(refusal(inQuery)).toEqual([401, 'RMP_AUTH_INVALID_REQUEST', CHALLENGE]);
      expect(upstream.requests).toHaveLength(0);
      expect(refusal(await withKey(id, live.key)).slice(0, 1)).toEqual([200]);
    });

    it('only the owner or an admin sees or revokes a key; disabling the owner stops their keys at once; a lost role narrows them', async () => {
      const { id } = await setup(backend);
      const ada = await userToken(id, 'ada@example.com');
      const bob = await userToken(id, 'bob@example.com');
      const admin = await adminToken(id);
      const key = (await id.call('POST', '/api/v1/api-keys', { token: ada.token, json: { name: 'ada' } })).json<KeyAnswer>();
      for (const method of ['GET', 'DELETE']) expect((await id.call(method, `/api/v1/api-keys/${key.id}`, { token: bob.token })).status).toBe(404);
      expect((await id.call('GET', `/api/v1/api-keys?userId=${ada.id}`, { token: bob.token })).status).toBe(403);
      expect((await id.call('GET', '/api/v1/api-keys', { token: bob.token })).json<{ items: unknown[] }>().items).toEqual([]);
      expect((await id.call('GET', '/api/v1/api-keys', { token: admin })).json<{ items: { id: string }[] }>().items.map((k) => k.id)).toEqual([key.id]);
      expect((await withKey(id, key.key)).status).toBe(200);

      // Ada loses the role that gave notes:read: the key (cached at the gateway) is cut down at once.
      expect((await id.call('PATCH', `/api/v1/users/${ada.id}`, { token: admin, json: { roles: ['reader'] } })).status).toBe(200);
      const narrowed = await withKey(id, key.key);
      expect([narrowed.status, narrowed.json().code]).toEqual([403, 'RMP_AUTHZ_DENIED']);
      expect((await id.call('PATCH', `/api/v1/users/${ada.id}`, { token: admin, json: { roles: ['user'] } })).status).toBe(200);
      expect((await withKey(id, key.key)).status).toBe(200);

      // Disabled: every key of theirs is revoked.
      expect((await id.call('PATCH', `/api/v1/users/${ada.id}`, { token: admin, json: { status: 'disabled' } })).status).toBe(200);
      expect(refusal(await withKey(id, key.key))).toEqual([401, 'RMP_AUTH_TOKEN_REVOKED', CHALLENGE]);
      const db = id.gw.runtime.identity!.storage.db;
      const rows = await db.selectFrom('api_keys').select(['revoked_at']).where('user_id', '=', ada.id).execute();
      expect(rows.every((r) => r.revoked_at !== null)).toBe(true);
      // Deleting a user deletes their keys with them.
      expect((await id.call('DELETE', `/api/v1/users/${ada.id}`, { token: admin })).status).toBe(204);
      expect(Number((await sql<{ n: number }>`select count(*) as n from api_keys`.execute(db)).rows[0]!.n)).toBe(0);
    });
  });
}
