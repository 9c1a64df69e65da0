import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { createSign, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { exportJWK, SignJWT, type JWK } from 'jose';
import { closeAfterEach } from '../../../test/helpers/gateway.js';
import { problemOf, send } from '../../../test/helpers/http.js';

/**
 * The jwt policy against a real issuer (a JWKS server on port 0) and a real upstream: a negative
 * corpus that must all be 401 with the right error and never reach the upstream, key rotation
 * with a bounded number of fetches, the verified-token cache and revocation.
 */

const use = closeAfterEach(afterEach);
const ISSUER = 'https://issuer.test';
const AUDIENCE = 'notes-api';

interface Key {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  jwk: JWK;
}

function rsaKey(): Key {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid: randomUUID(), privateKey, publicKey, jwk: {} };
}

let issuer: Server;
let jwksUrl: string;
let published: Key[] = [];
let fetches = 0;
let keyA: Key;
let keyB: Key;

beforeAll(async () => {
  keyA = rsaKey();
  keyB = rsaKey();
  for (const k of [keyA, keyB]) k.jwk = { ...(await exportJWK(k.publicKey)), kid: k.kid, alg: 'RS256', use: 'sig' };
  published = [keyA];
  issuer = createServer((req, res) => {
    fetches++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: published.map((k) => k.jwk) }));
  });
  await new Promise<void>((resolve) => issuer.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(issuer.address() as AddressInfo).port}/jwks.json`;
});
afterAll(() => issuer.close());

async function token(key: Key, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}, expiresIn: string | number = '5m'): Promise<string> {
  return new SignJWT({ scope: 'notes:read notes:write', roles: ['user'], ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'at+jwt', ...header })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject('user-1')
    .setIssuedAt()
    .setJti(randomUUID())
    .setExpirationTime(expiresIn)
    .sign(key.privateKey);
}

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** Signs any header (crit, jku, …), which jose would refuse to produce. */
function signRaw(key: Key, header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const signature = createSign('RSA-SHA256').update(input).sign(key.privateKey).toString('base64url');
  return `${input}.${signature}`;
}

function claims(extra: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000);
  return { iss: ISSUER, aud: AUDIENCE, sub: 'user-1', iat: now, exp: now + 300, jti: randomUUID(), ...extra };
}

async function setup(jwt: Record<string, unknown> = {}) {
  const up = await use.upstream((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ headers: req.headers }));
  });
  const gw = await use.gateway({
    upstreams: { app: { targets: [{ url: up.url }] } },
    routes: [
      {
        name: 'notes',
        match: { path: '/api/*' },
        upstream: 'app',
        policies: { jwt: { algorithms: ['RS256'], jwksUrl, issuer: ISSUER, audience: AUDIENCE, typ: 'at+jwt', jwks: { cooldown: '30s' }, ...jwt } },
      },
    ],
  });
  return { gw, up };
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('jwt policy', () => {
  it('accepts a valid token, passes the consumer in X-Consumer-* (client-sent ones stripped) and hides the token', async () => {
    const { gw, up } = await setup();
    const res = await send(gw.url, '/api/notes', { headers: { ...bearer(await token(keyA)), 'x-consumer-id': 'admin', 'X-Consumer-Roles': 'admin' } });
    expect(res.status).toBe(200);
    const seen = up.requests[0]!.headers;
    expect(seen['x-consumer-id']).toBe('user-1');
    expect(seen['x-consumer-type']).toBe('user');
    expect(seen['x-consumer-scopes']).toBe('notes:read notes:write');
    expect(seen['x-consumer-roles']).toBe('user');
    expect(seen.authorization).toBeUndefined();
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('refuses the negative corpus with 401, the right error and WWW-Authenticate; the upstream never sees one', async () => {
    const { gw, up } = await setup();
    const hs256WithPublicKey = await new SignJWT(claims())
      .setProtectedHeader({ alg: 'HS256', kid: keyA.kid, typ: 'at+jwt' })
      .sign(new TextEncoder().encode(keyA.publicKey.export({ type: 'spki', format: 'pem' }) as string));
    const valid = await token(keyA);
    const [h, p, s] = valid.split('.');
    const tampered = `${h}.${b64({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), sub: 'admin' })}.${s}`;
    const corpus: [string, Record<string, string>, string, string, string?][] = [
      ['alg none', bearer(`${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(claims())}.`), 'RMP_AUTH_TOKEN_INVALID', 'invalid_token'],
      ['HS256 signed with the public key', bearer(hs256WithPublicKey), 'RMP_AUTH_TOKEN_INVALID', 'invalid_token'],
      ['unknown kid', bearer(await token({ ...keyB, kid: 'no-such-kid' })), 'RMP_AUTH_TOKEN_INVALID', 'invalid_token'],
      ['kid path injection', bearer(await token(keyA, {}, { kid: '../../../../etc/passwd' })), 'RMP_AUTH_TOKEN_INVALID', 'invalid_token'],
      ['kid SQL injection', bearer(await token(keyA, {}, { kid: "x' UNION SELECT 'key' --" })), 'RMP_AUTH_TOKEN_INVALID', 'invalid_token'],
      ['kid with a newline', bearer(signRaw(keyA, { alg: 'RS256', typ: 'at+jwt', kid: 'a\nb' }, claims())), 'RMP_AUTH_TOKEN_INVALID', 'invalid_token'],
      ['expired', bearer(await token(keyA, {}, {}, Math.floor(Date.now() / 1000) - 120)), 'RMP_AUTH_TOKEN_EXPIRED', 'invalid_token'],
      ['nbf in the future', bearer(signRaw(keyA, { alg: 'RS256', typ: 'at+jwt', kid: keyA.kid }, claims({ nbf: Math.floor(Date.now() / 1000) + 600 }))), 'RMP_AUTH_TOKEN_INVALID', 'invalid_token'],
      ['wrong iss', bearer(signRaw(keyA, { alg: 'RS256', typ: 'at+jwt', kid: keyA.kid }, claims({ iss: 'https://evil.test' }))), 'RMP_AUTH_TOKEN_INVALID', 'invalid_token'],
      ['wrong aud', bearer(signRaw(keyA, { alg: 'RS256', typ: 'at+jwt', kid: keyA.kid }, claims({ aud: 'other-api' }))), 'RMP_AUTH_TOKEN_INVALID', 'invalid_token'],
      ['wrong typ', bearer(signRaw(keyA, { alg: 'RS256', typ: 'JWT', kid: keyA.kid }, claims())), 'RMP_AUTH_TOKEN_INVALID', 'invalid_token'],
      ['no exp', bearer(signRaw(keyA, { alg: 'RS256', typ: 'at+jwt', kid: keyA.kid }, claims({ exp: undefined }))), 'RMP_AUTH_TOKEN_INVALID', 'invalid_token'],
      ['jku header', bearer(signRaw(keyA, { alg: 'RS256', typ: 'at+jwt', kid: keyA.kid, jku: 'https://evil.test/jwks' }, claims())), 'RMP_AUTH_TOKEN_INVALID', 'invalid_token'],
      ['jwk header', bearer(signRaw(keyA, { alg: 'RS256', typ: 'at+jwt', jwk: keyA.jwk }, claims())), 'RMP_AUTH_TOKEN_INVALID', 'invalid_token'],
      ['x5u header', bearer(signRaw(keyA, { alg: 'RS256', typ: 'at+jwt', kid: keyA.kid, x5u: 'https://evil.test/cert' }, claims())), 'RMP_AUTH_TOKEN_INVALID', 'invalid_token'],
      ['x5c header', bearer(signRaw(keyA, { alg: 'RS256', typ: 'at+jwt', kid: keyA.kid, x5c: ['MIIB'] }, claims())), 'RMP_AUTH_TOKEN_INVALID', 'invalid_token'],
      ['unknown crit', bearer(signRaw(keyA, { alg: 'RS256', typ: 'at+jwt', kid: keyA.kid, crit: ['exp2'], exp2: 1 }, claims())), 'RMP_AUTH_TOKEN_INVALID', 'invalid_token'],
      ['tampered payload', bearer(tampered), 'RMP_AUTH_TOKEN_INVALID', 'invalid_token'],
      ['signed by a key the issuer does not publish', bearer(await token({ ...keyB, kid: keyA.kid })), 'RMP_AUTH_TOKEN_INVALID', 'invalid_token'],
      ['not a JWT', bearer('abc.def.ghi'), 'RMP_AUTH_TOKEN_INVALID', 'invalid_token'],
      ['Basic scheme', { authorization: 'Basic dXNlcjpwYXNz' }, 'RMP_AUTH_INVALID_REQUEST', 'invalid_request'],
      ['two tokens', { authorization: `Bearer ${valid} Bearer ${valid}` }, 'RMP_AUTH_INVALID_REQUEST', 'invalid_request'],
      ['no credentials', {}, 'RMP_AUTH_REQUIRED', ''],
    ];
    for (const [name, headers, code, error] of corpus) {
      const res = await send(gw.url, '/api/notes', { headers });
      expect(res.status, name).toBe(401);
      expect(problemOf(res).code, name).toBe(code);
      const challenge = String(res.headers['www-authenticate']);
      expect(challenge, name).toMatch(/^Bearer realm="rampart"/);
      if (error === '') expect(challenge, name).toBe('Bearer realm="rampart"');
      else expect(challenge, name).toContain(`error="${error}"`);
    }
    // A token in the query string is refused, not ignored — even next to a valid header.
    const inQuery = await send(gw.url, `/api/notes?access_token=${valid}`, { headers: bearer(valid) });
    expect(inQuery.status).toBe(401);
    expect(problemOf(inQuery).code).toBe('RMP_AUTH_INVALID_REQUEST');
    expect(up.requests).toHaveLength(0);
  });

  it('accepts a token signed with a rotated key after one JWKS fetch; 1000 unknown kids cost at most one more fetch', async () => {
    published = [keyA];
    const { gw } = await setup();
    expect((await send(gw.url, '/api/x', { headers: bearer(await token(keyA)) })).status).toBe(200);
    const afterFirst = fetches;
    published = [keyA, keyB]; // the issuer rotates in a new key
    expect((await send(gw.url, '/api/x', { headers: bearer(await token(keyB)) })).status).toBe(200);
    expect(fetches - afterFirst).toBe(1);
    const before = fetches;
    for (let i = 0; i < 1000; i++) {
      const res = await send(gw.url, '/api/x', { headers: bearer(await token({ ...keyB, kid: randomUUID() })) });
      if (res.status !== 401) throw new Error(`unknown kid answered ${res.status}`);
    }
    // The rotation fetch started the cooldown: no fetch at all for the flood.
    expect(fetches - before).toBeLessThanOrEqual(1);
    published = [keyA];
  });

  it('checks revocation on every request, cached token or not', async () => {
    const { gw } = await setup();
    const t = await token(keyA);
    expect((await send(gw.url, '/api/x', { headers: bearer(t) })).status).toBe(200);
    expect((await send(gw.url, '/api/x', { headers: bearer(t) })).status).toBe(200); // from the cache
    const jti = JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()).jti as string;
    await gw.runtime.stores.revocation(undefined).revokeToken(jti, Math.floor(Date.now() / 1000) + 300);
    const refused = await send(gw.url, '/api/x', { headers: bearer(t) });
    expect(refused.status).toBe(401);
    expect(problemOf(refused).code).toBe('RMP_AUTH_TOKEN_REVOKED');
    // Every token of the subject issued before now.
    const other = await token(keyA);
    expect((await send(gw.url, '/api/x', { headers: bearer(other) })).status).toBe(200);
    await gw.runtime.stores.revocation(undefined).revokeSubject('user-1', Math.floor(Date.now() / 1000) + 1);
    expect((await send(gw.url, '/api/x', { headers: bearer(other) })).status).toBe(401);
  });

  it('anonymous: no credentials go on without a consumer; bad credentials are still refused', async () => {
    const { gw, up } = await setup({ anonymous: true });
    expect((await send(gw.url, '/api/x')).status).toBe(200);
    expect(up.requests[0]!.headers['x-consumer-id']).toBeUndefined();
    expect((await send(gw.url, '/api/x', { headers: bearer('abc.def.ghi') })).status).toBe(401);
  });
});
