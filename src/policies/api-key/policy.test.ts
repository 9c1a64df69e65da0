import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { SignJWT } from 'jose';
import { closeAfterEach } from '../../../test/helpers/gateway.js';
import { problemOf, send } from '../../../test/helpers/http.js';

const use = closeAfterEach(afterEach);
const KEY = 'rmp_test_3v4Q9b1K8sX2m7Lc0Hn5Rt6Yw';
const OTHER = 'rmp_test_zzzzzzzzzzzzzzzzzzzzzzzzzz';
const SECRET = 'a-test-secret-of-at-least-32-bytes!!';
const sha = (k: string) => `sha256:${createHash('sha256').update(k).digest('hex')}`;

async function setup(policies: Record<string, unknown>) {
  const up = await use.upstream();
  const gw = await use.gateway({
    upstreams: { app: { targets: [{ url: up.url }] } },
    routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app', policies }],
  });
  return { gw, up };
}

const apiKey = { keys: [{ id: 'ci', hash: sha(KEY), scopes: ['notes:read'], roles: ['service'] }] };

describe('api-key policy', () => {
  it('accepts a known key by its hash, passes the consumer and never forwards the key', async () => {
    const { gw, up } = await setup({ 'api-key': apiKey });
    const res = await send(gw.url, '/api/x', { headers: { 'x-api-key': KEY, 'x-consumer-id': 'admin' } });
    expect(res.status).toBe(200);
    const seen = up.requests[0]!.headers;
    expect(seen['x-api-key']).toBeUndefined();
    expect(seen['x-consumer-id']).toBe('apikey:ci');
    expect(seen['x-consumer-type']).toBe('apiKey');
    expect(seen['x-consumer-key']).toBe('ci');
    expect(seen['x-consumer-scopes']).toBe('notes:read');
  });

  it('refuses missing, unknown, malformed, query-string and revoked keys with 401; the upstream never sees them', async () => {
    const { gw, up } = await setup({ 'api-key': apiKey });
    const cases: [Record<string, string>, string, string][] = [
      [{}, '/api/x', 'RMP_AUTH_REQUIRED'],
      [{ 'x-api-key': OTHER }, '/api/x', 'RMP_AUTH_TOKEN_INVALID'],
      [{ 'x-api-key': 'short' }, '/api/x', 'RMP_AUTH_INVALID_REQUEST'],
      [{}, `/api/x?api_key=${KEY}`, 'RMP_AUTH_INVALID_REQUEST'],
      [{ 'x-api-key': KEY }, `/api/x?api_key=${KEY}`, 'RMP_AUTH_INVALID_REQUEST'],
    ];
    for (const [headers, path, code] of cases) {
      const res = await send(gw.url, path, { headers });
      expect(res.status, code).toBe(401);
      expect(problemOf(res).code).toBe(code);
      expect(res.headers['www-authenticate']).toBe('ApiKey realm="rampart", header="x-api-key"');
    }
    await gw.runtime.stores.revocation(undefined).revokeToken('apikey:ci', Math.floor(Date.now() / 1000) + 3600);
    const revoked = await send(gw.url, '/api/x', { headers: { 'x-api-key': KEY } });
    expect(problemOf(revoked).code).toBe('RMP_AUTH_TOKEN_REVOKED');
    expect(up.requests).toHaveLength(0);
  });

  it('several methods on one route are alternatives: a JWT or an API key; without either, both challenges', async () => {
    const { gw, up } = await setup({ 'api-key': apiKey, jwt: { algorithms: ['HS256'], secret: SECRET, issuer: 'i', audience: 'a' } });
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('i').setAudience('a').setSubject('alice').setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));
    expect((await send(gw.url, '/api/x', { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect(up.requests[0]!.headers['x-consumer-id']).toBe('alice');
    expect((await send(gw.url, '/api/x', { headers: { 'x-api-key': KEY } })).status).toBe(200);
    expect(up.requests[1]!.headers['x-consumer-id']).toBe('apikey:ci');
    const none = await send(gw.url, '/api/x');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('ApiKey realm="rampart", header="x-api-key", Bearer realm="rampart"');
    // Bad credentials of one kind are refused even when the other kind is fine.
    const bad = await send(gw.url, '/api/x', { headers: { 'x-api-key': OTHER, authorization: `Bearer ${token}` } });
    expect(bad.status).toBe(401);
    expect(problemOf(bad).code).toBe('RMP_AUTH_TOKEN_INVALID');
    expect(up.requests).toHaveLength(2);
  });
});

describe('consumer-token policy', () => {
  it('passes the consumer upstream as a short-lived JWT the upstream can verify; a client-sent one is replaced', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { jwtVerify } = await import('jose');
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const { gw, up } = await setup({
      'api-key': apiKey,
      'consumer-token': { privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }), audience: 'reports', ttl: '30s' },
    });
    expect((await send(gw.url, '/api/x', { headers: { 'x-api-key': KEY, 'x-consumer-token': 'forged' } })).status).toBe(200);
    expect((await send(gw.url, '/api/y', { headers: { 'x-api-key': KEY } })).status).toBe(200);
    const [first, second] = up.requests.map((r) => String(r.headers['x-consumer-token']));
    expect(first).not.toBe('forged');
    expect(second).toBe(first); // reused within half its lifetime
    const { payload, protectedHeader } = await jwtVerify(first!, publicKey, { issuer: 'rampart', audience: 'reports', algorithms: ['ES256'] });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload).toMatchObject({ sub: 'apikey:ci', consumer_type: 'apiKey', scope: 'notes:read', roles: ['service'], key_id: 'ci' });
    expect(payload.exp! - payload.iat!).toBe(30);
  });
});

describe('cachedKeySource', () => {
  it('looks a known and an unknown key up once per TTL, bounded in size', async () => {
    const { cachedKeySource } = await import('./policy.js');
    let now = 0;
    const lookups: string[] = [];
    const consumer = { id: 'k', type: 'apiKey' as const, scopes: [], roles: [], keyId: 'k' };
    const slow = { lookup: (_key: string, hash: Buffer) => (lookups.push(hash.toString('hex')), Promise.resolve(hash[0] === 1 ? { id: 'k', consumer } : undefined)) };
    const cached = cachedKeySource(slow, { size: 2, ttlMs: 60_000, negativeTtlMs: 10_000, now: () => now });
    const known = Buffer.from([1, 2]);
    const unknown = Buffer.from([9, 9]);
    expect(await cached.lookup('k', known)).toMatchObject({ id: 'k' });
    expect(await cached.lookup('k', known)).toMatchObject({ id: 'k' });
    expect(await cached.lookup('k', unknown)).toBeUndefined();
    expect(await cached.lookup('k', unknown)).toBeUndefined();
    expect(lookups).toEqual(['0102', '0909']);
    now = 10_001; // the negative answer expires first
    await cached.lookup('k', unknown);
    await cached.lookup('k', known);
    expect(lookups).toEqual(['0102', '0909', '0909']);
    await cached.lookup('k', Buffer.from([7])); // a third key: the oldest entry goes
    await cached.lookup('k', known);
    expect(lookups.length).toBe(5);
  });
});
