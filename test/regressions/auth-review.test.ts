import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHash, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { exportJWK, SignJWT, type JWK } from 'jose';
import pino from 'pino';
import { closeAfterEach } from '../helpers/gateway.js';
import { problemOf, send } from '../helpers/http.js';
import { loadConfigText } from '../../src/config/load.js';
import { buildPipeline } from '../../src/gateway/pipeline.js';
import { createEvents } from '../../src/observability/events.js';
import type { ConfigError } from '../../src/config/errors.js';
import { formatIssue } from '../../src/config/errors.js';
import { RedisRevocation } from '../../src/revocation/revocation.js';
import { closedPort } from '../helpers/gateway.js';

/**
 * Regressions from the review of the authentication and authorization policies; each test is
 * named after the bug it pins down.
 */

const use = closeAfterEach(afterEach);
const SECRET = 'a-test-secret-of-at-least-32-bytes!!';
const KEY = 'rmp_test_3v4Q9b1K8sX2m7Lc0Hn5Rt6Yw';
const sha = (k: string) => `sha256:${createHash('sha256').update(k).digest('hex')}`;
const hs = (sub: string, extra: Record<string, unknown> = {}) =>
  new SignJWT(extra).setProtectedHeader({ alg: 'HS256' }).setIssuer('i').setAudience('a').setSubject(sub).setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));
const jwt = { algorithms: ['HS256'], secret: SECRET, issuer: 'i', audience: 'a' };

let issuer: Server;
let jwksUrl: string;
let keys: { kid: string; privateKey: KeyObject; jwk: JWK }[] = [];
let published: JWK[] = [];
beforeAll(async () => {
  for (let i = 0; i < 1; i++) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const kid = randomUUID();
    keys.push({ kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256' } });
  }
  published = [keys[0]!.jwk];
  issuer = createServer((_req, res) => res.end(JSON.stringify({ keys: published })));
  await new Promise<void>((resolve) => issuer.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(issuer.address() as AddressInfo).port}/jwks`;
});
afterAll(() => {
  issuer.close();
  keys = [];
});

async function gateway(routePolicies: Record<string, unknown>, handler?: Parameters<typeof use.upstream>[0]) {
  const up = await use.upstream(handler);
  const gw = await use.gateway({
    upstreams: { app: { targets: [{ url: up.url }] } },
    routes: [{ name: 'api', match: { path: '/api/*', methods: ['GET', 'HEAD'] }, upstream: 'app', policies: routePolicies }],
  });
  return { gw, up };
}

describe('auth review regressions', () => {
  it('api-key-wins-authorization-leaks: when an API key authenticates, the Authorization header is not forwarded either', async () => {
    const { gw, up } = await gateway({ 'api-key': { keys: [{ id: 'ci', hash: sha(KEY) }] }, jwt });
    const forged = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"admin"}').toString('base64url')}.`;
    expect((await send(gw.url, '/api/x', { headers: { 'x-api-key': KEY, authorization: `Bearer ${forged}` } })).status).toBe(200);
    expect(up.requests[0]!.headers.authorization).toBeUndefined();
    expect(up.requests[0]!.headers['x-consumer-id']).toBe('apikey:ci');
  });

  it('duplicate-query-parameter-bypass: a repeated parameter read by a rule is refused', async () => {
    const { gw, up } = await gateway({ jwt, authorize: { allow: ['request.query.userId == consumer.id'] } });
    const auth = { authorization: `Bearer ${await hs('alice')}` };
    expect((await send(gw.url, '/api/notes?userId=alice', { headers: auth })).status).toBe(200);
    expect((await send(gw.url, '/api/notes?userId=bob&userId=alice', { headers: auth })).status).toBe(403);
    expect((await send(gw.url, '/api/notes?userId=bob&USERID=alice', { headers: auth })).status).toBe(403);
    expect(up.requests).toHaveLength(1);
  });

  it('public-drops-own-authentication: public: true next to a route\'s own authentication policy is a config error', () => {
    const logger = pino({ level: 'silent' });
    const yaml = `upstreams:\n  a:\n    targets: [{ url: "http://127.0.0.1:1" }]\nroutes:\n  - name: r\n    match: { path: /r }\n    upstream: a\n    public: true\n    policies:\n      jwt: { algorithms: [HS256], secret: "${SECRET}", issuer: i, audience: a }\n`;
    let issues: string[] = [];
    try {
      buildPipeline(loadConfigText(yaml, 'rampart.yaml', '/tmp'), { logger, events: createEvents(logger) });
    } catch (error) {
      issues = (error as ConfigError).issues.map(formatIssue);
    }
    expect(issues).toEqual(["rampart.yaml:10:12: routes[0].policies.jwt: route 'r' says 'public: true' and lists the authentication policy 'jwt': remove one of them"]);
  });

  it('response-rule-conditional-and-status-leaks: no conditional requests upstream; 404, other statuses and HEAD answered by the gateway', async () => {
    const { gw, up } = await gateway({ jwt, authorize: { response: ['response.body.ownerId == consumer.id'] } }, (req, res) => {
      const status = req.url === '/api/missing' ? 404 : req.url === '/api/broken' ? 500 : 200;
      res.writeHead(status, { 'content-type': 'application/json', etag: '"v1"' });
      res.end(JSON.stringify(status === 404 ? { error: 'not found' } : { ownerId: 'bob', text: 'bob-secret' }));
    });
    const auth = { authorization: `Bearer ${await hs('alice')}` };
    const other = await send(gw.url, '/api/bobs', { headers: { ...auth, 'if-none-match': '*', range: 'bytes=0-1' } });
    expect(other.status).toBe(404);
    expect(up.requests[0]!.headers['if-none-match']).toBeUndefined();
    expect(up.requests[0]!.headers.range).toBeUndefined();
    const missing = await send(gw.url, '/api/missing', { headers: auth });
    expect(missing.status).toBe(404);
    expect(problemOf(missing).code).toBe(problemOf(other).code);
    expect(missing.headers['content-type']).toBe(other.headers['content-type']);
    const broken = await send(gw.url, '/api/broken', { headers: auth });
    expect(broken.status).toBe(502);
    expect(broken.text).not.toContain('bob-secret');
    expect((await send(gw.url, '/api/bobs', { method: 'HEAD', headers: auth })).status).toBe(404);
  });

  it('cache-keeps-withdrawn-key: a cached token is verified again once its key has left the JWKS', async () => {
    const { gw } = await gateway({ jwt: { algorithms: ['ES256'], jwksUrl, issuer: 'i', audience: 'a', jwks: { refresh: '1s' } } });
    const k = keys[0]!;
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: k.kid }).setIssuer('i').setAudience('a').setSubject('alice').setExpirationTime('5m').sign(k.privateKey);
    const auth = { authorization: `Bearer ${token}` };
    expect((await send(gw.url, '/api/x', { headers: auth })).status).toBe(200);
    published = [];
    // Bounded wait for the next refresh (1 s): the cached token must then be refused.
    let status = 200;
    const deadline = Date.now() + 5000;
    while (status === 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      status = (await send(gw.url, '/api/x', { headers: auth })).status;
    }
    published = [k.jwk];
    expect(status).toBe(401);
  });

  it('credential-refusal-evasion: encoded or ;-separated query credentials, padded tokens and repeated Authorization are refused', async () => {
    const { gw, up } = await gateway({ jwt });
    const token = await hs('alice');
    const auth = { authorization: `Bearer ${token}` };
    for (const query of ['?access%5Ftoken=x', '?x=1;access_token=x', '?ACCESS_TOKEN=x']) {
      const res = await send(gw.url, `/api/x${query}`, { headers: auth });
      expect(res.status, query).toBe(401);
      expect(problemOf(res).code, query).toBe('RMP_AUTH_INVALID_REQUEST');
    }
    expect((await send(gw.url, '/api/x', { headers: { authorization: `Bearer ${token}=` } })).status).toBe(401);
    expect((await send(gw.url, '/api/x', { headers: { authorization: [`Bearer ${token}`, 'Bearer other'] } })).status).toBe(401);
    expect(up.requests).toHaveLength(0);
  });

  it('client-token-not-revocable: a token with client_id and no sub is revoked by its consumer id', async () => {
    const { gw } = await gateway({ jwt });
    const token = await new SignJWT({ client_id: 'svc' }).setProtectedHeader({ alg: 'HS256' }).setIssuer('i').setAudience('a').setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));
    const auth = { authorization: `Bearer ${token}` };
    expect((await send(gw.url, '/api/x', { headers: auth })).status).toBe(200);
    await gw.runtime.stores.revocation(undefined).revokeSubject('client:svc', Math.floor(Date.now() / 1000) + 1);
    expect((await send(gw.url, '/api/x', { headers: auth })).status).toBe(401);
  });

  it('revocation-store-down-500: Redis unreachable during a revocation check is 503 RMP_AUTH_UNAVAILABLE', async () => {
    const redis = new Redis(`redis://127.0.0.1:${await closedPort()}`, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    const revocation = new RedisRevocation(redis, 'x:', pino({ level: 'silent' }));
    await expect(Promise.resolve(revocation.isRevoked({ jti: 'j', sub: 's' }))).rejects.toMatchObject({ code: 'RMP_AUTH_UNAVAILABLE', status: 503 });
    revocation.close();
    redis.disconnect();
  });
});
