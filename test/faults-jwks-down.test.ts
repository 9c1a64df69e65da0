import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeAfterEach } from './helpers/gateway.js';
import { problemOf, send } from './helpers/http.js';

/**
 * Issue 11, faults: the JWKS endpoint of an external issuer goes down and comes back. Documented
 * (jwt.jwks in docs/configuration.md): the last keys are used for `staleIfError` past `refresh`;
 * after that, 503 RMP_AUTH_UNAVAILABLE with Retry-After and nothing forwarded (fail closed); when
 * the issuer answers again, tokens are accepted again without a restart.
 */

const use = closeAfterEach(afterEach);
const ISSUER = 'https://issuer.test';
const AUDIENCE = 'notes-api';

let jwks: Server;
let jwksUrl: string;
let up = true;
const fetches: { at: number; ok: boolean }[] = [];
let privateKey: CryptoKey;
let publicJwk: Record<string, unknown>;

beforeAll(async () => {
  const pair = await generateKeyPair('ES256');
  privateKey = pair.privateKey;
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  jwks = createServer((_req, res) => {
    fetches.push({ at: Date.now(), ok: up });
    if (!up) {
      res.writeHead(503, { 'content-type': 'text/plain' });
      return void res.end('down for maintenance');
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [publicJwk] }));
  });
  jwks.listen(0, '127.0.0.1');
  await once(jwks, 'listening');
  jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
});
afterAll(async () => {
  jwks.closeAllConnections();
  jwks.close();
  await once(jwks, 'close');
});

/** Between tries of a time-based state (the key cache's windows): a short pause, not a busy loop. */
const pause = () => new Promise((r) => setTimeout(r, 50));

const token = () => new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(ISSUER).setAudience(AUDIENCE).setSubject('user-1').setIssuedAt().setExpirationTime('5m').sign(privateKey);

describe('a JWKS endpoint that goes down and comes back', () => {
  it('stale keys for staleIfError, then 503 RMP_AUTH_UNAVAILABLE (nothing forwarded), then accepted again without a restart', async () => {
    const upstream = await use.upstream();
    const gw = await use.gateway({
      upstreams: { app: { targets: [{ url: upstream.url }] } },
      routes: [
        {
          name: 'api',
          match: { path: '/api/*' },
          upstream: 'app',
          // cacheSize 0: every request resolves its key, so the JWKS state decides each answer.
          policies: { jwt: { algorithms: ['ES256'], jwksUrl, issuer: ISSUER, audience: AUDIENCE, cacheSize: 0, jwks: { refresh: '1s', staleIfError: '2s', cooldown: '1s', timeout: '1s' } } },
        },
      ],
    });
    const bearer = { authorization: `Bearer ${await token()}` };
    expect((await send(gw.url, '/api/a', { headers: bearer })).status).toBe(200);

    up = false;
    const downAt = Date.now();
    // Until a fetch has failed, and for the stale window after the last good one, tokens still pass.
    let res = await send(gw.url, '/api/b', { headers: bearer });
    const deadline = Date.now() + 10_000; // generous: the window is refresh (1 s) + staleIfError (2 s)
    while (!fetches.some((f) => !f.ok) && Date.now() < deadline) {
      expect(res.status).toBe(200);
      await pause();
      res = await send(gw.url, '/api/b', { headers: bearer });
    }
    expect(fetches.some((f) => !f.ok)).toBe(true);
    const lastGood = Math.max(...fetches.filter((f) => f.ok).map((f) => f.at));
    // The request whose refresh failed was answered with the stale keys: the fetch fails about
    // `refresh` (1 s) after the last good one, well inside refresh + staleIfError (3 s).
    expect(res.status, `answered ${Date.now() - lastGood} ms after the last good fetch`).toBe(200);

    // Past the window: fail closed.
    while (res.status === 200 && Date.now() < deadline) {
      await pause();
      res = await send(gw.url, '/api/c', { headers: bearer });
    }
    expect([res.status, problemOf(res).code, res.headers['retry-after']]).toEqual([503, 'RMP_AUTH_UNAVAILABLE', '5']);
    const refusedAfterMs = Date.now() - lastGood;
    expect(refusedAfterMs).toBeGreaterThanOrEqual(3000 - 50); // not before refresh + staleIfError
    const refused = await send(gw.url, '/api/refused', { headers: bearer });
    expect([refused.status, problemOf(refused).code]).toEqual([503, 'RMP_AUTH_UNAVAILABLE']);
    expect(upstream.requests.filter((r) => r.url === '/api/refused')).toHaveLength(0); // fail closed: nothing forwarded

    // The issuer is back: accepted again, no restart.
    up = true;
    let back = await send(gw.url, '/api/d', { headers: bearer });
    while (back.status !== 200 && Date.now() < deadline + 10_000) {
      await pause();
      back = await send(gw.url, '/api/d', { headers: bearer });
    }
    expect(back.status).toBe(200);
    console.log(`[faults] JWKS down at +0 ms; stale keys used until +${refusedAfterMs} ms after the last good fetch (window 3000 ms); refused 503 then; accepted again ${Date.now() - downAt} ms after going down`);
  });
});
