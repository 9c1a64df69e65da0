import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type TestUpstream } from './helpers/gateway.js';
import { postgresAvailable, startIdentityGateway, type IdentityGateway } from './helpers/identity.js';
import { redisAvailable } from './helpers/services.js';

/**
 * Issue 11, multi-node: three Rampart nodes (each its own runtime, listener, PostgreSQL pool and
 * Redis connections) sharing one PostgreSQL database and one Redis behave as one gateway:
 *
 * - a token revoked through node A is refused by B and C — waiting on the refusal (pub/sub
 *   invalidation), failing past 3 s, the measured delay recorded;
 * - a limit of 100 per minute admits exactly 100 of 300 concurrent requests spread over the three;
 * - failed logins spread over the three lock the account at the threshold, counted once.
 *
 * The nodes run in this test process (on their own ports); test/ratelimit-cluster.test.ts runs two
 * real `rampart start` processes for the limiter.
 */

const ready = (await postgresAvailable()) && (await redisAvailable());
const LIMIT = 100;
const TOTAL = 300;
const THRESHOLD = 5;

let upstream: TestUpstream;
let nodes: IdentityGateway[] = [];

beforeAll(async () => {
  if (!ready) return;
  upstream = await startUpstream();
  const redis = { url: 'redis://127.0.0.1:6379', keyPrefix: `rampart-test:${randomUUID()}:` };
  const common = {
    backend: 'postgres' as const,
    redis,
    identity: { lockout: { threshold: THRESHOLD, baseDelay: '30s' } },
    server: { overload: { maxEventLoopDelay: '0s' } },
    defaults: { 'ip-rate-limit': false },
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    routes: [
      { name: 'me', match: { path: '/api/me', methods: ['GET'] }, upstream: 'app', policies: { jwt: { identity: true } } },
      { name: 'limited', match: { path: '/api/limited', methods: ['GET'] }, upstream: 'app', public: true, policies: { 'rate-limit': { limits: [{ name: 'cluster', key: ['route'], store: 'redis', algorithm: 'fixed-window', limit: LIMIT, window: '1m' }] } } },
    ],
  };
  const a = await startIdentityGateway(common);
  nodes = [a, ...(await Promise.all([startIdentityGateway({ ...common, storageUrl: a.storageUrl }), startIdentityGateway({ ...common, storageUrl: a.storageUrl })]))];
}, 60_000);

afterAll(async () => {
  // The database is the first node's: it is dropped last.
  for (const node of [...nodes].reverse()) await node.close();
  await upstream?.close();
});

async function account(email: string): Promise<{ access_token: string }> {
  const credentials = { email, password: 'a long enough passphrase 7' };
  expect((await nodes[0]!.call('POST', '/api/v1/auth/register', { json: credentials })).status).toBe(202);
  const login = await nodes[1]!.call('POST', '/api/v1/auth/login', { json: credentials });
  expect(login.status).toBe(200);
  return login.json<{ access_token: string }>();
}

describe.skipIf(!ready)('three nodes sharing PostgreSQL and Redis', () => {
  it('a logout through A is refused by B and C within 3 s (measured)', async () => {
    const { access_token: token } = await account(`three-${randomUUID()}@example.com`);
    for (const node of nodes) expect((await node.call('GET', '/api/me', { token })).status).toBe(200);
    const started = performance.now();
    expect((await nodes[0]!.call('POST', '/api/v1/auth/logout', { token })).status).toBe(204);
    const delays: number[] = [];
    for (const node of nodes.slice(1)) {
      let res = await node.call('GET', '/api/me', { token });
      // Bounded: each try is one request; past 3 s the test fails.
      while (res.status === 200 && performance.now() - started < 3000) res = await node.call('GET', '/api/me', { token });
      expect([res.status, res.json<{ code: string }>().code]).toEqual([401, 'RMP_AUTH_TOKEN_REVOKED']);
      delays.push(Math.round(performance.now() - started));
    }
    console.log(`[cluster] revocation through A refused on B after ${delays[0]} ms, on C after ${delays[1]} ms`);
  });

  it(`a limit of ${LIMIT} per minute admits exactly ${LIMIT} of ${TOTAL} concurrent requests spread over the three`, async () => {
    // A fixed window is a calendar minute: start well inside one (a wait on the clock, at most 15 s).
    const left = 60_000 - (Date.now() % 60_000);
    if (left < 15_000) await new Promise((r) => setTimeout(r, left + 50));
    const before = upstream.requests.filter((r) => r.url === '/api/limited').length;
    let next = 0;
    const statuses: { node: number; status: number }[] = [];
    await Promise.all(
      Array.from({ length: 30 }, async () => {
        while (next < TOTAL) {
          const i = next++;
          const res = await nodes[i % 3]!.call('GET', '/api/limited');
          statuses.push({ node: i % 3, status: res.status });
        }
      }),
    );
    const admitted = statuses.filter((s) => s.status === 200);
    expect({ admitted: admitted.length, refused: statuses.filter((s) => s.status === 429).length }).toEqual({ admitted: LIMIT, refused: TOTAL - LIMIT });
    for (const n of [0, 1, 2]) expect(admitted.some((s) => s.node === n)).toBe(true); // every node admitted some: one shared counter
    expect(upstream.requests.filter((r) => r.url === '/api/limited').length - before).toBe(LIMIT); // a refused request never reached the upstream
  });

  it(`failed logins spread over the three lock the account at the ${THRESHOLD}th, counted once across nodes`, async () => {
    const email = `lock-${randomUUID()}@example.com`;
    await account(email);
    const codes: string[] = [];
    for (let i = 0; i < THRESHOLD; i++) {
      const res = await nodes[i % 3]!.call('POST', '/api/v1/auth/login', { json: { email, password: `wrong passphrase number ${i}` } });
      codes.push(`${res.status} ${res.json<{ code: string }>().code}`);
    }
    expect(codes).toEqual(Array.from({ length: THRESHOLD }, () => '401 RMP_LOGIN_FAILED'));
    // The node that judged the THRESHOLD-th failure (the count is in the database) locked the account…
    await nodes[(THRESHOLD - 1) % 3]!.gw.logs.waitFor((l) => String(l.event ?? '').startsWith('authn_login_lock'));
    // …and the right password, on any node, is now refused the same way as a wrong one (no oracle).
    for (const node of nodes) {
      const res = await node.call('POST', '/api/v1/auth/login', { json: { email, password: 'a long enough passphrase 7' } });
      expect([res.status, res.json<{ code: string }>().code], res.text).toEqual([401, 'RMP_LOGIN_FAILED']);
    }
  });
});
