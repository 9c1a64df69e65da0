import * as OTPAuth from 'otpauth';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { main } from '../src/cli/main.js';
import { MasterKey } from '../src/identity/master-key.js';
import { startUpstream } from './helpers/gateway.js';
import { adminToken, freshStorage, postgresAvailable, startIdentityGateway, type IdentityGateway } from './helpers/identity.js';

/**
 * `rampart keys rotate-master` (issue 7): with the new key as `masterKey` and the old one in
 * `previousMasterKeys`, everything secret at rest is re-encrypted under the new key; afterwards a
 * gateway with the new key alone serves every credential made before (API keys, client secrets,
 * refresh tokens, TOTP, signing keys), new credentials use a new pepper, and the old key opens
 * nothing.
 */
const pgUp = await postgresAvailable();
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

const OLD = randomBytes(32).toString('base64');
const NEW = randomBytes(32).toString('base64');
const PASSWORD = 'a long enough passphrase 7';
const totp = (secret: string, steps = 0) => OTPAuth.TOTP.generate({ secret: OTPAuth.Secret.fromBase32(secret), timestamp: Date.now() + steps * 30_000 });
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

for (const backend of ['sqlite', 'postgres'] as const) {
  describe.skipIf(backend === 'postgres' && !pgUp)(`master-key rotation on ${backend}`, () => {
    it('re-encrypts signing keys, TOTP secrets and server keys; every credential made before keeps working under the new key alone', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'rampart-rotate-'));
      const storage = backend === 'sqlite' ? { url: `sqlite:${join(dir, 'rampart.db')}`, drop: () => Promise.resolve() } : await freshStorage('postgres');
      open.push({ close: () => storage.drop() });
      const upstream = await startUpstream();
      open.push(upstream);
      const start = async (identity: Record<string, unknown>): Promise<IdentityGateway> => {
        const id = await startIdentityGateway({
          backend,
          storageUrl: storage.url,
          identity: { limits: { login: { limit: 1000, window: '1m' } }, scopes: { user: ['notes:read'], admin: ['notes:read'] }, ...identity },
          upstreams: { notes: { targets: [{ url: upstream.url }] } },
          routes: [{ name: 'notes', match: { path: '/api/notes/*' }, upstream: 'notes', policies: { jwt: { identity: true }, 'api-key': { identity: true } } }],
        });
        open.push(id);
        return id;
      };

      // Under the old key: a user with TOTP and a refresh token, an API key, an OAuth client.
      const before = await start({ masterKey: OLD });
      await before.call('POST', '/api/v1/auth/register', { json: { email: 'ada@example.com', password: PASSWORD } });
      const login = (await before.call('POST', '/api/v1/auth/login', { json: { email: 'ada@example.com', password: PASSWORD } })).json<{ access_token: string; refresh_token: string }>();
      const key = (await before.call('POST', '/api/v1/api-keys', { token: login.access_token, json: { name: 'old' } })).json<{ key: string }>().key;
      const { secret: totpSecret } = (await before.call('POST', '/api/v1/users/me/mfa/enrol', { token: login.access_token, json: { currentPassword: PASSWORD } })).json<{ secret: string }>();
      expect((await before.call('POST', '/api/v1/users/me/mfa/confirm', { token: login.access_token, json: { code: totp(totpSecret) } })).status).toBe(200);
      const admin = await adminToken(before);
      const made = await before.call('POST', '/api/v1/clients', { token: admin, json: { id: 'billing', name: 'Billing', scopes: ['notes:read'] } });
      expect(made.status, made.text).toBe(201);
      const client = made.json<{ secret: string }>();
      const kids = (await before.call('GET', '/.well-known/jwks.json')).json<{ keys: { kid: string }[] }>().keys.map((k) => k.kid);
      await before.close();
      open.splice(open.indexOf(before), 1);

      // The rotation, from the CLI, with the new key configured and the old one as previous.
      const config = join(dir, 'rotate.yaml');
      writeFileSync(config, stringify({ mode: 'development', storage: { url: storage.url }, identity: { issuer: 'https://localhost', masterKey: NEW, previousMasterKeys: [OLD] }, routes: [] }));
      const out: string[] = [];
      const err: string[] = [];
      const io = { out: (l: string) => out.push(l), err: (l: string) => err.push(l) };
      expect(await main(['keys', 'rotate-master', '-c', config], io), err.join('\n')).toBe(0);
      expect(out[0]).toMatch(new RegExp(`^re-encrypted under master key ${new MasterKey(Buffer.from(NEW, 'base64')).id}: 2 signing keys, 1 TOTP secrets, 3 server keys$`));
      expect(out[1]).toBe('new API keys and client secrets use pepper version 2; existing ones keep working');
      // Again: nothing left to do, no new pepper.
      out.length = 0;
      expect(await main(['keys', 'rotate-master', '-c', config], io)).toBe(0);
      expect(out[0]).toMatch(/: 0 signing keys, 0 TOTP secrets, 0 server keys$/);
      expect(out[1]).toContain('pepper version 2;');
      // Without a previous key there is nothing to rotate from: one line, exit 1.
      writeFileSync(config, stringify({ mode: 'development', storage: { url: storage.url }, identity: { issuer: 'https://localhost', masterKey: NEW }, routes: [] }));
      err.length = 0;
      expect(await main(['keys', 'rotate-master', '-c', config], io)).toBe(1);
      expect(err).toEqual(['rampart: identity.previousMasterKeys is empty: set the new key as identity.masterKey and the old one in identity.previousMasterKeys first']);

      // The old key alone opens nothing any more.
      await expect(start({ masterKey: OLD })).rejects.toThrow(/encrypted under another master key/);

      // The new key alone: everything made before works.
      const after = await start({ masterKey: NEW });
      expect((await after.call('GET', '/.well-known/jwks.json')).json<{ keys: { kid: string }[] }>().keys.map((k) => k.kid)).toEqual(kids);
      expect((await after.call('GET', '/api/notes/1', { headers: { 'x-api-key': key } })).status).toBe(200);
      expect((await after.call('POST', '/oauth/token', { body: 'grant_type=client_credentials', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('billing', client.secret) } })).status).toBe(200);
      const refreshed = await after.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: login.refresh_token } });
      expect(refreshed.status, refreshed.text).toBe(200);
      expect((await after.call('GET', '/api/notes/1', { token: refreshed.json<{ access_token: string }>().access_token })).status).toBe(200);
      const challenge = await after.call('POST', '/api/v1/auth/login', { json: { email: 'ada@example.com', password: PASSWORD } });
      expect(challenge.json().code).toBe('RMP_MFA_REQUIRED');
      const second = await after.call('POST', '/api/v1/auth/mfa', { json: { mfaToken: challenge.json().mfaToken, code: totp(totpSecret, 1) } });
      expect(second.status, second.text).toBe(200);
      // New credentials are hashed with the new pepper.
      const fresh = (await after.call('POST', '/api/v1/api-keys', { token: second.json<{ access_token: string }>().access_token, json: { name: 'new' } })).json<{ id: string; key: string }>();
      expect((await after.call('GET', '/api/notes/1', { headers: { 'x-api-key': fresh.key } })).status).toBe(200);
      const db = after.gw.runtime.identity!.storage.db;
      expect((await db.selectFrom('api_keys').select(['name', 'pepper_version']).orderBy('created_at').execute()).map((r) => [r.name, Number(r.pepper_version)])).toEqual([
        ['old', 1],
        ['new', 2],
      ]);
      // Nothing at rest is under the old key.
      const newKey = new MasterKey(Buffer.from(NEW, 'base64'));
      for (const row of await db.selectFrom('signing_keys').select('private_jwk_encrypted').execute()) expect(newKey.isCurrent(row.private_jwk_encrypted, 'signing-keys')).toBe(true);
      for (const row of await db.selectFrom('secret_keys').select('value_encrypted').execute()) expect(newKey.isCurrent(row.value_encrypted, 'secret-keys')).toBe(true);
    });
  });
}
