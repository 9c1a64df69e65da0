import { createHmac, createPublicKey, KeyObject, sign as edSign, type JsonWebKey as NodeJsonWebKey, type webcrypto } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { postgresAvailable, startNotesBehindIdentity, type IdentityGateway, type Reply } from './helpers/identity.js';
import type { TestUpstream } from './helpers/gateway.js';

/**
 * The identity service's signing keys seen from outside: a negative corpus of tokens rebuilt from
 * ones this service issued (each refused at the gateway, none forwarded), key rotation (the next
 * key is published before it signs, the previous one is accepted until its tokens expire, an
 * emergency revocation withdraws it at once), private keys encrypted at rest, and the metadata.
 */

const pgUp = await postgresAvailable();
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

const ISSUER = 'https://localhost';
/** accessTtl (default 10m) + the 5m skew allowance: how long a retired key stays published. */
const RETAIN_MS = 600_000 + 300_000;
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'];

async function setup(backend: 'sqlite' | 'postgres', identity: Record<string, unknown> = {}): Promise<{ id: IdentityGateway; upstream: TestUpstream }> {
  const notes = await startNotesBehindIdentity({ backend, identity });
  open.push(notes);
  return notes;
}

const credentials = { email: 'keys@example.com', password: 'violet submarine orchestra 93' };

async function register(id: IdentityGateway): Promise<void> {
  const reg = await id.call('POST', '/api/v1/auth/register', { json: credentials });
  expect(reg.status).toBe(202);
}

async function login(id: IdentityGateway): Promise<string> {
  const reply = await id.call('POST', '/api/v1/auth/login', { json: credentials });
  expect(reply.status, reply.text).toBe(200);
  return reply.json<{ access_token: string }>().access_token;
}

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const kidOf = (token: string) => decodeProtectedHeader(token).kid;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An Ed25519 signature over any header and payload (jku, crit, alg none…, which jose would refuse to produce). */
function signRaw(key: CryptoKey | Uint8Array, header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const keyObject = KeyObject.from(key as unknown as webcrypto.CryptoKey);
  return `${input}.${edSign(null, Buffer.from(input), keyObject).toString('base64url')}`;
}

/** HMAC-SHA-256 over header.payload with `secret`: the classic "public key as HMAC secret" confusion. */
function signHs256(secret: Buffer | string, header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** The token with one part replaced (tampering that keeps the other parts as issued). */
function withPart(token: string, index: 0 | 1 | 2, value: string): string {
  const parts = token.split('.');
  parts[index] = value;
  return parts.join('.');
}

function expectRefused(reply: Reply, code: string, name: string): void {
  expect(reply.status, `${name}: ${reply.text}`).toBe(401);
  expect(reply.headers['content-type'], name).toMatch(/^application\/problem\+json/);
  expect(reply.json().code, name).toBe(code);
  const challenge = String(reply.headers['www-authenticate']);
  expect(challenge, name).toContain('Bearer');
  expect(challenge, name).toContain(code === 'RMP_AUTH_INVALID_REQUEST' ? 'error="invalid_request"' : 'error="invalid_token"');
}

interface Case {
  name: string;
  /** Sent as `Authorization: Bearer …` (none when undefined). */
  token?: string;
  /** Request path (default /api/notes/x). */
  path?: string;
  code: 'RMP_AUTH_TOKEN_INVALID' | 'RMP_AUTH_TOKEN_EXPIRED' | 'RMP_AUTH_INVALID_REQUEST';
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe.skipIf(backend === 'postgres' && !pgUp)(`identity signing keys on ${backend}`, () => {
    it('refuses every token rebuilt from a genuine one (expired, wrong aud/iss/typ, foreign key or kid, alg swaps, tampering, key-carrying headers, query string) and forwards none', async () => {
      const { id, upstream } = await setup(backend);
      const service = id.gw.runtime.identity!.service;
      await register(id);
      const genuine = await login(id);

      const ok = await id.call('GET', '/api/notes/x', { token: genuine });
      expect(ok.status, ok.text).toBe(200);
      expect(upstream.requests).toHaveLength(1);

      const header = decodeProtectedHeader(genuine) as Record<string, unknown>;
      const payload = decodeJwt(genuine) as JWTPayload & Record<string, unknown>;
      expect(header).toEqual({ alg: 'EdDSA', kid: expect.any(String), typ: 'at+jwt' });
      expect(payload).toMatchObject({ iss: ISSUER, aud: ISSUER, sub: expect.any(String), client_id: 'rampart', roles: ['user'], sid: expect.any(String), jti: expect.any(String) });
      const signer = service.keys.signer();
      expect(signer.kid).toBe(header.kid);
      expect(signer.alg).toBe('EdDSA');
      const now = Math.floor(Date.now() / 1000);

      // Controls: the helpers that build the corpus do produce tokens the gateway accepts, so
      // each refusal below is down to the one thing changed.
      const controls: [string, string][] = [
        ['raw re-signature of the genuine header and claims', signRaw(signer.key, header, payload)],
        ['jose re-signature of the genuine claims', await new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', kid: signer.kid, typ: 'at+jwt' }).sign(signer.key)],
        ['expired 5 s ago, within the 30 s clock skew', signRaw(signer.key, header, { ...payload, exp: now - 5 })],
      ];
      for (const [name, token] of controls) {
        const reply = await id.call('GET', '/api/notes/x', { token });
        expect(reply.status, `control ${name}: ${reply.text}`).toBe(200);
      }
      let forwarded = upstream.requests.length;
      expect(forwarded).toBe(1 + controls.length);

      const foreign = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
      const foreignJwk = await exportJWK(foreign.publicKey);
      const foreignKid = await calculateJwkThumbprint(foreignJwk);
      const publicJwk = JSON.parse(service.keys.jwks).keys.find((k: JWK) => k.kid === signer.kid) as JWK;
      expect(publicJwk.x).toBeDefined();
      const publicPem = createPublicKey({ key: publicJwk as NodeJsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
      const other = await service.tokens.issue({ sub: 'someone-else', scope: '', roles: ['user'], sid: 'other' });
      const { aud: _aud, ...withoutAud } = payload;
      const { exp: _exp, ...withoutExp } = payload;
      const { typ: _typ, ...withoutTyp } = header;
      const { kid: _kid, ...withoutKid } = header;

      const cases: Case[] = [
        // Expiry, with the service's own key.
        { name: 'expired: issued 2 h ago by the service itself', token: (await service.tokens.issue({ sub: String(payload.sub), scope: '', roles: ['user'], sid: 'x' }, Date.now() - 2 * 3_600_000)).token, code: 'RMP_AUTH_TOKEN_EXPIRED' },
        { name: 'expired 2 min ago (beyond the skew), real key', token: signRaw(signer.key, header, { ...payload, exp: now - 120 }), code: 'RMP_AUTH_TOKEN_EXPIRED' },
        { name: 'no exp at all, real key', token: signRaw(signer.key, header, withoutExp), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: 'nbf an hour ahead, real key', token: signRaw(signer.key, header, { ...payload, nbf: now + 3600 }), code: 'RMP_AUTH_TOKEN_INVALID' },
        // Claims the service did not issue, signed with the real key.
        { name: 'wrong audience (jose, real key)', token: await new SignJWT(withoutAud).setProtectedHeader({ alg: 'EdDSA', kid: signer.kid, typ: 'at+jwt' }).setAudience('https://other.example').sign(signer.key), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: 'no audience, real key', token: signRaw(signer.key, header, withoutAud), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: 'wrong issuer, real key', token: signRaw(signer.key, header, { ...payload, iss: 'https://evil.example' }), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: 'issuer with a trailing slash, real key', token: signRaw(signer.key, header, { ...payload, iss: `${ISSUER}/` }), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: 'no typ, real key', token: signRaw(signer.key, withoutTyp, payload), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: "typ 'JWT' instead of 'at+jwt', real key", token: signRaw(signer.key, { ...header, typ: 'JWT' }, payload), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: "the service's own password-change token (typ rampart-pwc+jwt)", token: (await service.tokens.issuePasswordChange(String(payload.sub), 'binding')).token, code: 'RMP_AUTH_TOKEN_INVALID' },
        // Keys that are not the service's.
        { name: 'foreign key, the real kid', token: signRaw(foreign.privateKey, header, payload), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: 'foreign key, its own kid', token: signRaw(foreign.privateKey, { ...header, kid: foreignKid }, payload), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: 'foreign key, a made-up kid', token: signRaw(foreign.privateKey, { ...header, kid: 'rampart-2024' }, payload), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: 'real key, no kid', token: signRaw(signer.key, withoutKid, payload), code: 'RMP_AUTH_TOKEN_INVALID' },
        // Key-carrying headers: refused even with the real key's signature.
        { name: 'embedded jwk header with the foreign key, signed by it', token: signRaw(foreign.privateKey, { ...header, kid: foreignKid, jwk: foreignJwk }, payload), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: 'embedded jwk header with the real public key, real signature', token: signRaw(signer.key, { ...header, jwk: { kty: publicJwk.kty, crv: publicJwk.crv, x: publicJwk.x } }, payload), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: 'jku header, real signature', token: signRaw(signer.key, { ...header, jku: 'https://evil.example/jwks.json' }, payload), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: 'x5u header, real signature', token: signRaw(signer.key, { ...header, x5u: 'https://evil.example/cert.pem' }, payload), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: 'x5c header, real signature', token: signRaw(signer.key, { ...header, x5c: ['MIIB'] }, payload), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: 'unknown crit extension, real signature', token: signRaw(signer.key, { ...header, crit: ['exp2'], exp2: 1 }, payload), code: 'RMP_AUTH_TOKEN_INVALID' },
        // Algorithm swaps.
        { name: "alg 'none', empty signature", token: `${b64({ ...header, alg: 'none' })}.${b64(payload)}.`, code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: "alg 'none', original signature", token: withPart(genuine, 0, b64({ ...header, alg: 'none' })), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: 'HS256 keyed with the public key x bytes', token: signHs256(Buffer.from(publicJwk.x!, 'base64url'), { ...header, alg: 'HS256' }, payload), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: 'HS256 keyed with the x text', token: signHs256(publicJwk.x!, { ...header, alg: 'HS256' }, payload), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: 'HS256 keyed with the JWKS JSON text', token: signHs256(service.keys.jwks, { ...header, alg: 'HS256' }, payload), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: 'HS256 keyed with the public key PEM', token: signHs256(publicPem, { ...header, alg: 'HS256' }, payload), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: 'ES256 header over the EdDSA signature', token: withPart(genuine, 0, b64({ ...header, alg: 'ES256' })), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: "alg 'Ed25519' (not in the allowlist), real signature", token: signRaw(signer.key, { ...header, alg: 'Ed25519' }, payload), code: 'RMP_AUTH_TOKEN_INVALID' },
        // Tampering that keeps the original signature.
        { name: 'sub changed, original signature', token: withPart(genuine, 1, b64({ ...payload, sub: 'someone-else' })), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: "roles changed to ['admin'], original signature", token: withPart(genuine, 1, b64({ ...payload, roles: ['admin'] })), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: 'exp extended by a day, original signature', token: withPart(genuine, 1, b64({ ...payload, exp: Number(payload.exp) + 86_400 })), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: "another genuine token's signature", token: withPart(genuine, 2, other.token.split('.')[2]!), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: 'signature stripped', token: withPart(genuine, 2, ''), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: 'signature truncated by one byte', token: withPart(genuine, 2, Buffer.from(genuine.split('.')[2]!, 'base64url').subarray(0, 63).toString('base64url')), code: 'RMP_AUTH_TOKEN_INVALID' },
        { name: 'base64 padding appended', token: `${genuine}=`, code: 'RMP_AUTH_TOKEN_INVALID' },
        // Where the token is sent.
        { name: 'token in the query string only', path: `/api/notes/x?access_token=${genuine}`, code: 'RMP_AUTH_INVALID_REQUEST' },
        { name: 'token in the query string as well as the header', path: `/api/notes/x?access_token=${genuine}`, token: genuine, code: 'RMP_AUTH_INVALID_REQUEST' },
      ];

      // None of the corpus is byte-identical to an accepted token.
      for (const c of cases) if (c.token !== undefined && c.path === undefined) expect(c.token, c.name).not.toBe(genuine);
      for (const c of cases) {
        const reply = await id.call('GET', c.path ?? '/api/notes/x', c.token === undefined ? {} : { token: c.token });
        expectRefused(reply, c.code, c.name);
        // The refusal never echoes the token.
        if (c.token !== undefined) expect(reply.text + String(reply.headers['www-authenticate']), c.name).not.toContain(c.token.split('.')[1]!);
        expect(upstream.requests.length, `${c.name} was forwarded`).toBe(forwarded);
      }

      // The genuine token still works afterwards: nothing above poisoned the verified-token cache.
      expect((await id.call('GET', '/api/notes/y', { token: genuine })).status).toBe(200);
      forwarded++;
      expect(upstream.requests.length).toBe(forwarded);
      for (const r of upstream.requests) expect(r.headers.authorization).toBeUndefined();
    });

    it('rotation: the next key is published before it signs, the previous key is accepted until retention ends, revocation withdraws a key at once; private keys are encrypted at rest', async () => {
      const { id, upstream } = await setup(backend, { keys: { jwksMaxAge: '1s', rotateEvery: '1h' } });
      const service = id.gw.runtime.identity!.service;
      const keys = service.keys;

      const fetchJwks = async (): Promise<JWK[]> => {
        const reply = await id.call('GET', '/.well-known/jwks.json');
        expect(reply.status).toBe(200);
        expect(reply.headers['cache-control']).toBe('public, max-age=1');
        expect(reply.headers['content-type']).toMatch(/^application\/jwk-set\+json/);
        const set = reply.json<{ keys: JWK[] }>().keys;
        for (const k of set) {
          expect(k).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig', kid: expect.any(String), x: expect.any(String) });
          for (const m of PRIVATE_MEMBERS) expect(k, `JWKS member ${m}`).not.toHaveProperty(m);
          // kid = RFC 7638 thumbprint of the public key.
          expect(k.kid).toBe(await calculateJwkThumbprint(k, 'sha256'));
        }
        return set;
      };

      // Before rotation: current + next, both published.
      const before = await fetchJwks();
      expect(before).toHaveLength(2);
      const initial = keys.list();
      expect(initial.map((k) => k.state).sort()).toEqual(['current', 'next']);
      const first = initial.find((k) => k.state === 'current')!;
      const next = initial.find((k) => k.state === 'next')!;
      expect(new Set(before.map((k) => k.kid))).toEqual(new Set([first.kid, next.kid]));

      // Private halves are encrypted under the master key.
      const rows = await id.gw.runtime.identity!.storage.db.selectFrom('signing_keys').selectAll().execute();
      expect(rows).toHaveLength(2);
      for (const row of rows) {
        expect(row.private_jwk_encrypted.startsWith('v1.')).toBe(true);
        expect(row.private_jwk_encrypted).not.toContain('"d"');
        expect(row.private_jwk_encrypted).not.toContain('kty');
        expect(Object.keys(JSON.parse(row.public_jwk) as JWK)).not.toContain('d');
      }

      await register(id);
      const tokenA = await login(id);
      const kidA = kidOf(tokenA)!;
      expect(kidA).toBe(first.kid);
      expect((await id.call('GET', '/api/notes/a', { token: tokenA })).status).toBe(200);

      const rotated = await keys.rotate();
      expect(rotated.kid).toBe(next.kid);
      const nextFrom = Date.parse(rotated.activeFrom);
      // Not before it has been published for one JWKS cache lifetime.
      expect(nextFrom).toBeGreaterThanOrEqual(Date.parse(next.createdAt) + 1000);
      if (Date.now() < nextFrom - 50) expect(keys.signer().kid).toBe(kidA);

      // Wait (bounded) for the next key to take over, re-reading the keys as the refresh timer does.
      const deadline = Date.now() + 5000;
      while (keys.signer().kid !== next.kid) {
        if (Date.now() > deadline) throw new Error(`the next key ${next.kid} did not start signing within 5 s (activeFrom ${rotated.activeFrom})`);
        await sleep(100);
        await keys.refresh();
      }
      expect(Date.now()).toBeGreaterThanOrEqual(nextFrom);
      const tokenB = await login(id);
      const kidB = kidOf(tokenB)!;
      expect(kidB).toBe(next.kid);
      // The key that signs B was in the JWKS fetched before the rotation.
      expect(before.map((k) => k.kid)).toContain(kidB);

      // Both tokens are accepted: the previous key stays until its tokens have expired.
      expect((await id.call('GET', '/api/notes/a', { token: tokenA })).status).toBe(200);
      expect((await id.call('GET', '/api/notes/b', { token: tokenB })).status).toBe(200);

      // JWKS: previous + current + a new next.
      const after = await fetchJwks();
      expect(after).toHaveLength(3);
      const states = keys.list();
      expect(states.find((k) => k.kid === kidA)?.state).toBe('previous');
      expect(states.find((k) => k.kid === kidB)?.state).toBe('current');
      const newNext = states.find((k) => k.state === 'next')!;
      expect(newNext).toBeDefined();
      expect(new Set(after.map((k) => k.kid))).toEqual(new Set([kidA, kidB, newNext.kid]));
      expect(Date.parse(newNext.activeFrom)).toBe(nextFrom + 3_600_000);

      // Retention: the retired key stays published for accessTtl + 5m after its successor took over, then goes.
      expect(keys.list(nextFrom + RETAIN_MS - 1).find((k) => k.kid === kidA)?.state).toBe('previous');
      expect(keys.list(nextFrom + RETAIN_MS).map((k) => k.kid)).not.toContain(kidA);
      const later = keys.list(Date.now() + RETAIN_MS + 1000);
      expect(later.map((k) => k.kid)).not.toContain(kidA);
      expect(later.map((k) => [k.kid, k.state])).toEqual([
        [kidB, 'current'],
        [newNext.kid, 'next'],
      ]);
      expect(() => keys.verificationKey(kidA, Date.now() + RETAIN_MS + 1000)).toThrow();

      // Emergency revocation of the previous key: its tokens are refused at once and it leaves JWKS.
      const forwarded = upstream.requests.length;
      expect(await keys.revoke(kidA)).toBe(true);
      expect(await keys.revoke(kidA)).toBe(false);
      const refusedA = await id.call('GET', '/api/notes/a', { token: tokenA });
      expectRefused(refusedA, 'RMP_AUTH_TOKEN_INVALID', 'token of a revoked key');
      expect(upstream.requests.length).toBe(forwarded);
      const withoutA = await fetchJwks();
      expect(withoutA.map((k) => k.kid)).not.toContain(kidA);
      expect(new Set(withoutA.map((k) => k.kid))).toEqual(new Set([kidB, newNext.kid]));
      expect((await id.call('GET', '/api/notes/b', { token: tokenB })).status).toBe(200);

      // Revoking the signing key itself: the next key signs at once, B is refused, a new next key is published.
      expect(await keys.revoke(kidB)).toBe(true);
      expect(keys.signer().kid).toBe(newNext.kid);
      expectRefused(await id.call('GET', '/api/notes/b', { token: tokenB }), 'RMP_AUTH_TOKEN_INVALID', 'token of the revoked signing key');
      const tokenC = await login(id);
      expect(kidOf(tokenC)).toBe(newNext.kid);
      expect((await id.call('GET', '/api/notes/c', { token: tokenC })).status).toBe(200);
      const finalSet = await fetchJwks();
      expect(finalSet).toHaveLength(2);
      expect(finalSet.map((k) => k.kid)).not.toContain(kidB);
      expect(finalSet.map((k) => k.kid)).toContain(newNext.kid);
      expect(keys.list().map((k) => k.state).sort()).toEqual(['current', 'next']);

      // Revoked rows stay in the table (for the record), still encrypted.
      const allRows = await id.gw.runtime.identity!.storage.db.selectFrom('signing_keys').selectAll().execute();
      expect(allRows.length).toBe(4);
      expect(allRows.filter((r) => r.revoked_at !== null).map((r) => r.kid).sort()).toEqual([kidA, kidB].sort());
      for (const row of allRows) {
        expect(row.private_jwk_encrypted.startsWith('v1.')).toBe(true);
        expect(row.private_jwk_encrypted).not.toContain('"d"');
      }
    });

    it('revoked-signing-key-revives-retired-key: revoking the signing key right after a rotation lets the next key take over at once, not the retired previous key', async () => {
      const { id, upstream } = await setup(backend, { keys: { jwksMaxAge: '1s', rotateEvery: '1h' } });
      const keys = id.gw.runtime.identity!.service.keys;
      const k1 = keys.list().find((k) => k.state === 'current')!.kid;
      const k2 = keys.list().find((k) => k.state === 'next')!.kid;
      await keys.rotate();
      const deadline = Date.now() + 5000;
      while (keys.signer().kid !== k2) {
        if (Date.now() > deadline) throw new Error('the next key did not start signing within 5 s');
        await sleep(100);
        await keys.refresh();
      }
      const k3 = keys.list().find((k) => k.state === 'next')!.kid;
      expect(keys.list().map((k) => [k.kid, k.state])).toEqual([
        [k1, 'previous'],
        [k2, 'current'],
        [k3, 'next'],
      ]);
      await register(id);
      const tokenB = await login(id);
      expect(kidOf(tokenB)).toBe(k2);

      // The signing key leaked: revoke it. Its tokens are refused and it leaves JWKS…
      expect(await keys.revoke(k2)).toBe(true);
      const forwarded = upstream.requests.length;
      expectRefused(await id.call('GET', '/api/notes/b', { token: tokenB }), 'RMP_AUTH_TOKEN_INVALID', 'token of the revoked signing key');
      expect(upstream.requests.length).toBe(forwarded);
      expect(keys.jwks).not.toContain(k2);
      // …and (src/identity/keys.ts, revoke()) "If it was signing, the next key takes over at once":
      // the published next key k3 signs, while the retired k1 stays a verification-only previous key.
      expect(keys.signer().kid, 'the retired previous key signs again instead of the next key').toBe(k3);
      expect(keys.list().find((k) => k.kid === k1)?.state).toBe('previous');
      expect(keys.list().find((k) => k.kid === k3)?.state).toBe('current');
      const tokenC = await login(id);
      expect(kidOf(tokenC)).toBe(k3);
      expect((await id.call('GET', '/api/notes/c', { token: tokenC })).status).toBe(200);
    });

    it('authorization-server metadata names the issuer and the JWKS, and no endpoint that does not exist', async () => {
      const { id } = await setup(backend);
      const reply = await id.call('GET', '/.well-known/oauth-authorization-server');
      expect(reply.status).toBe(200);
      expect(reply.headers['content-type']).toMatch(/^application\/json/);
      const metadata = reply.json<Record<string, unknown>>();
      expect(metadata.issuer).toBe(ISSUER);
      expect(String(metadata.jwks_uri)).toMatch(/\/\.well-known\/jwks\.json$/);
      expect(metadata.jwks_uri).toBe(`${ISSUER}/.well-known/jwks.json`);
      for (const absent of ['registration_endpoint', 'authorization_endpoint', 'userinfo_endpoint', 'device_authorization_endpoint']) {
        expect(metadata, absent).not.toHaveProperty(absent);
      }
      // Every endpoint it names is served here (an unauthenticated call is an OAuth error, not a 404).
      for (const name of ['token_endpoint', 'revocation_endpoint', 'introspection_endpoint']) {
        const url = new URL(String(metadata[name]));
        expect(url.origin, name).toBe(ISSUER);
        const answer = await id.call('POST', url.pathname, { body: 'token=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
        expect([answer.status, answer.json().error], name).toEqual([401, 'invalid_client']);
      }
      expect(metadata.grant_types_supported).toEqual(['client_credentials']);
      expect(metadata.token_endpoint_auth_methods_supported).toEqual(['client_secret_basic', 'client_secret_post', 'private_key_jwt']);
      expect(metadata.access_token_signing_alg_values_supported).toEqual(['EdDSA']);
      // The jwks_uri's path is served by this gateway.
      const jwks = await id.call('GET', new URL(String(metadata.jwks_uri)).pathname);
      expect(jwks.status).toBe(200);
      expect(jwks.json<{ keys: JWK[] }>().keys.length).toBeGreaterThanOrEqual(2);
    });
  });
}
