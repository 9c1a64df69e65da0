import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { main } from '../../src/cli/main.js';
import { startUpstream } from '../helpers/gateway.js';
import { adminToken, freshStorage, holdNextCall, MASTER_KEY, postgresAvailable, startIdentityGateway, userToken, type IdentityGateway, type Reply } from '../helpers/identity.js';

/**
 * Regressions from the hostile review of API keys, OAuth clients and the OAuth endpoints (issue 7).
 * Each test is named after the finding it pins; each failed before its fix.
 */
const pgUp = await postgresAvailable();
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

const basic = (clientId: string, secret: string) => `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`;
const post = (id: IdentityGateway, path: string, params: Record<string, string>, headers: Record<string, string> = {}): Promise<Reply> =>
  id.call('POST', path, { body: new URLSearchParams(params).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
const clientToken = async (id: IdentityGateway, client: string, secret: string) => (await post(id, '/oauth/token', { grant_type: 'client_credentials' }, { authorization: basic(client, secret) })).json<{ access_token: string }>().access_token;

async function gateway(backend: 'sqlite' | 'postgres', options: { storageUrl?: string; identity?: Record<string, unknown>; server?: Record<string, unknown> } = {}): Promise<IdentityGateway> {
  const upstream = await startUpstream();
  open.push(upstream);
  const id = await startIdentityGateway({
    backend,
    ...(options.storageUrl !== undefined ? { storageUrl: options.storageUrl } : {}),
    ...(options.server !== undefined ? { server: options.server } : {}),
    identity: { scopes: { user: ['notes:read'], admin: ['notes:read', 'notes:write'] }, ...options.identity },
    upstreams: { notes: { targets: [{ url: upstream.url }] } },
    routes: [{ name: 'notes', match: { path: '/api/notes/*' }, upstream: 'notes', policies: { jwt: { identity: true }, 'api-key': { identity: true } } }],
  });
  open.push(id);
  return id;
}

async function register(id: IdentityGateway, admin: string, body: Record<string, unknown>): Promise<{ id: string; secret: string }> {
  const made = await id.call('POST', '/api/v1/clients', { token: admin, json: body });
  expect(made.status, made.text).toBe(201);
  return made.json<{ id: string; secret: string }>();
}

/** A database two gateways (one after the other) and the CLI share. */
async function sharedStorage(backend: 'sqlite' | 'postgres'): Promise<string> {
  if (backend === 'postgres') {
    const storage = await freshStorage('postgres');
    open.push({ close: () => storage.drop() });
    return storage.url;
  }
  return `sqlite:${join(mkdtempSync(join(tmpdir(), 'rampart-review-')), 'rampart.db')}`;
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe.skipIf(backend === 'postgres' && !pgUp)(`machine credentials review on ${backend}`, () => {
    it('client-cutoff-lost-on-restart: a disabled or deleted client\'s tokens stay refused after a restart, and a CLI deletion without Redis reaches a running gateway', async () => {
      const storageUrl = await sharedStorage(backend);
      const first = await gateway(backend, { storageUrl });
      const admin = await adminToken(first);
      const disabled = await register(first, admin, { id: 'leaky', name: 'Leaky', scopes: ['notes:read'] });
      const deleted = await register(first, admin, { id: 'gone', name: 'Gone', scopes: ['notes:read'] });
      const rs = await register(first, admin, { id: 'res-srv', name: 'RS', scopes: [], introspection: true });
      const leakyToken = await clientToken(first, 'leaky', disabled.secret);
      const goneToken = await clientToken(first, 'gone', deleted.secret);
      expect((await first.call('PATCH', '/api/v1/clients/leaky', { token: admin, json: { status: 'disabled' } })).status).toBe(200);
      expect((await first.call('DELETE', '/api/v1/clients/gone', { token: admin })).status).toBe(204);
      await first.close();
      open.splice(open.indexOf(first), 1);

      // A restart (the memory revocation store starts empty): still refused, and inactive.
      const second = await gateway(backend, { storageUrl });
      for (const token of [leakyToken, goneToken]) {
        const refused = await second.call('GET', '/api/notes/1', { token });
        expect([refused.status, refused.json().code]).toEqual([401, 'RMP_AUTH_TOKEN_REVOKED']);
        expect((await post(second, '/oauth/introspect', { token }, { authorization: basic('res-srv', rs.secret) })).text).toBe('{"active":false}');
      }

      // The CLI (its own process's memory store, no Redis) deletes a client; the running gateway
      // learns it from the database at its next poll (keys.refresh).
      const third = await register(second, admin, { id: 'cli-gone', name: 'CLI', scopes: ['notes:read'] });
      const thirdToken = await clientToken(second, 'cli-gone', third.secret);
      expect((await second.call('GET', '/api/notes/1', { token: thirdToken })).status).toBe(200);
      const config = join(mkdtempSync(join(tmpdir(), 'rampart-review-cli-')), 'rampart.yaml');
      writeFileSync(config, stringify({ mode: 'development', storage: { url: storageUrl }, identity: { issuer: 'https://localhost', masterKey: MASTER_KEY }, routes: [] }));
      const quiet = { out: () => undefined, err: () => undefined };
      expect(await main(['clients', 'delete', 'cli-gone', '--offline', '-c', config], quiet)).toBe(0);
      await second.gw.runtime.identity!.service.clients.syncCutOffs();
      expect((await second.call('GET', '/api/notes/1', { token: thirdToken })).json().code).toBe('RMP_AUTH_TOKEN_REVOKED');
      // Disabling again (a retry after a failure) is accepted and publishes the cut-off again.
      expect((await second.call('PATCH', '/api/v1/clients/leaky', { token: admin, json: { status: 'disabled' } })).json()).toMatchObject({ status: 'disabled' });
    });

    it('client-token-issued-while-disabled: a token request in flight when the client is disabled gets no live token', async () => {
      const id = await gateway(backend);
      const admin = await adminToken(id);
      const c = await register(id, admin, { id: 'racer', name: 'Racer', scopes: ['notes:read'] });
      const service = id.gw.runtime.identity!.service;
      const hold = holdNextCall(service.tokens, 'issueForClient');
      const pending = post(id, '/oauth/token', { grant_type: 'client_credentials' }, { authorization: basic('racer', c.secret) });
      await hold.inside; // authenticated, the client read as enabled; the token not signed yet
      expect((await id.call('PATCH', '/api/v1/clients/racer', { token: admin, json: { status: 'disabled' } })).json()).toMatchObject({ status: 'disabled' });
      hold.release();
      const granted = await pending;
      expect([granted.status, granted.json().error]).toEqual([401, 'invalid_client']);
      // The same for a secret revoked (it leaked) while a request with it was in flight.
      const d = await register(id, admin, { id: 'racer-2', name: 'Racer 2', scopes: ['notes:read'] });
      const secretId = (await id.call('GET', '/api/v1/clients/racer-2', { token: admin })).json<{ secrets: { id: string }[] }>().secrets[0]!.id;
      const hold2 = holdNextCall(service.tokens, 'issueForClient');
      const pending2 = post(id, '/oauth/token', { grant_type: 'client_credentials' }, { authorization: basic('racer-2', d.secret) });
      await hold2.inside;
      expect((await id.call('DELETE', `/api/v1/clients/racer-2/secrets/${secretId}`, { token: admin })).status).toBe(204);
      hold2.release();
      expect((await pending2).status).toBe(401);
    });

    it('signing-key-retired-before-client-tokens: a client token stays verifiable after a rotation until it expires; none may outlive the key retention', async () => {
      const id = await gateway(backend, { identity: { clients: { tokenTtl: '1h' } } });
      const admin = await adminToken(id);
      const c = await register(id, admin, { id: 'longlived', name: 'Long', scopes: ['notes:read'] });
      const token = await clientToken(id, 'longlived', c.secret);
      const { exp } = decodeJwt(token);
      expect(exp! - Date.now() / 1000).toBeGreaterThan(3590);
      const keys = id.gw.runtime.identity!.service.keys;
      const rotated = await keys.rotate();
      const kid = decodeProtectedHeader(token).kid!;
      // Just before the token expires, long after the rotation, its key still verifies.
      expect(() => keys.verificationKey(kid, Math.max(Date.parse(rotated.activeFrom) + 60_000, exp! * 1000 - 1000))).not.toThrow();
      // A client's own tokenTtl cannot exceed the configured client token lifetime.
      const other = await gateway(backend);
      const otherAdmin = await adminToken(other);
      const tooLong = await other.call('POST', '/api/v1/clients', { token: otherAdmin, json: { id: 'too-long', name: 'x', scopes: [], tokenTtl: '1h' } });
      expect([tooLong.status, tooLong.json().code]).toEqual([400, 'RMP_VALIDATION_FAILED']);
    });

    it('client-lockout-by-stranger: failures from one address do not lock a client out for another', async () => {
      const id = await gateway(backend, { server: { trustedProxies: ['127.0.0.1'] } });
      const admin = await adminToken(id);
      const victim = await register(id, admin, { id: 'payments', name: 'Payments', scopes: ['notes:read'] });
      const from = (ip: string) => ({ 'x-forwarded-for': ip });
      const strangers: number[] = [];
      for (let i = 0; i < 11; i++) strangers.push((await post(id, '/oauth/token', { grant_type: 'client_credentials' }, { authorization: basic('payments', 'x'), ...from('203.0.113.7') })).status);
      expect(strangers).toEqual([...Array(10).fill(401), 429]);
      expect((await post(id, '/oauth/token', { grant_type: 'client_credentials' }, { authorization: basic('payments', victim.secret), ...from('198.51.100.20') })).status).toBe(200);
    });

    it('revoke-spent-refresh-token-keeps-session: revoking a refresh token that was already rotated ends its session (the thief holds the successor)', async () => {
      const id = await gateway(backend);
      await userToken(id, 'ada@example.com');
      const login = (await id.call('POST', '/api/v1/auth/login', { json: { email: 'ada@example.com', password: 'a long enough passphrase 7' } })).json<{ refresh_token: string }>();
      const stolen = (await id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: login.refresh_token } })).json<{ refresh_token: string; access_token: string }>();
      expect((await post(id, '/oauth/revoke', { token: login.refresh_token, client_id: 'rampart' })).status).toBe(200);
      expect((await id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: stolen.refresh_token } })).status).toBe(401);
      expect((await id.call('GET', '/api/notes/1', { token: stolen.access_token })).json().code).toBe('RMP_AUTH_TOKEN_REVOKED');
    });

    it('concurrent-secret-rotation-two-permanent: rotations at once leave one secret without an end', async () => {
      const id = await gateway(backend);
      const admin = await adminToken(id);
      await register(id, admin, { id: 'rot', name: 'Rot', scopes: ['notes:read'] });
      const clients = id.gw.runtime.identity!.service.clients;
      const cl = { ip: '', userAgent: undefined, requestId: 'x' };
      for (let round = 0; round < 5; round++) {
        await Promise.all([clients.rotateSecret('a', undefined, 'rot', 0, cl), clients.rotateSecret('b', undefined, 'rot', 0, cl)]);
        expect((await clients.get('rot'))!.secrets.filter((x) => x.status === 'active'), `round ${round}`).toHaveLength(1);
      }
    });

    it('rotate-secret-beyond-admin-ceiling: an admin cannot take a wider client\'s scopes by rotating its secret, replacing its keys or re-enabling it', async () => {
      const id = await gateway(backend);
      const admin = await adminToken(id);
      // The operator (CLI, unbounded) registers a client with a scope no admin has.
      const clients = id.gw.runtime.identity!.service.clients;
      const cl = { ip: '', userAgent: undefined, requestId: 'x' };
      await clients.create('cli', undefined, { id: 'payments', name: 'Payments', scopes: ['payments:write'] }, cl);
      const rotated = await id.call('POST', '/api/v1/clients/payments/secrets', { token: admin, json: {} });
      expect([rotated.status, rotated.json().code, rotated.json().scopes]).toEqual([403, 'RMP_SCOPE_EXCEEDED', ['payments:write']]);
      expect((await id.call('PATCH', '/api/v1/clients/payments', { token: admin, json: { status: 'disabled' } })).status).toBe(200);
      const enabled = await id.call('PATCH', '/api/v1/clients/payments', { token: admin, json: { status: 'active' } });
      expect([enabled.status, enabled.json().code]).toEqual([403, 'RMP_SCOPE_EXCEEDED']);
      // Narrowing and revoking stay open to any admin.
      const secretId = (await clients.get('payments'))!.secrets[0]!.id;
      expect((await id.call('DELETE', `/api/v1/clients/payments/secrets/${secretId}`, { token: admin })).status).toBe(204);
    });

    it('refused-api-key-use-recorded: a refused use of a revoked key does not move its lastUsedAt', async () => {
      const id = await gateway(backend);
      const ada = await userToken(id, 'ada@example.com');
      const made = (await id.call('POST', '/api/v1/api-keys', { token: ada.token, json: { name: 'k' } })).json<{ id: string; key: string }>();
      expect((await id.call('GET', '/api/notes/1', { headers: { 'x-api-key': made.key } })).status).toBe(200);
      const usedAt = (await id.call('GET', `/api/v1/api-keys/${made.id}`, { token: ada.token })).json<{ lastUsedAt: string }>().lastUsedAt;
      expect((await id.call('DELETE', `/api/v1/api-keys/${made.id}`, { token: ada.token })).status).toBe(204);
      for (let i = 0; i < 3; i++) expect((await id.call('GET', '/api/notes/1', { headers: { 'x-api-key': made.key } })).status).toBe(401);
      expect((await id.call('GET', `/api/v1/api-keys/${made.id}`, { token: ada.token })).json<{ lastUsedAt: string }>().lastUsedAt).toBe(usedAt);
    });
  });
}
