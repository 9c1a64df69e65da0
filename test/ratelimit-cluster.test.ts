import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startUpstream, type TestUpstream } from './helpers/gateway.js';
import { killAll, startGateway, type Gateway } from './helpers/process.js';
import { redisAvailable } from './helpers/services.js';

/**
 * Acceptance: two Rampart processes sharing Redis, hammered concurrently on loopback within one
 * window, with a fixed-window limit of 100 per minute per key and with GCRA at burst 100: exactly
 * 100 admitted in total, every other one 429.
 *
 * Two real `rampart start` processes (the CLI from source) read the same YAML file (port 0, so
 * each gets its own port) and count in the shared Redis under a random key prefix. With `redis`
 * configured, each forks one worker per core by default (`--workers`, docs/reliability.md), so
 * the 100 are counted across every worker of both nodes. The upstream
 * is a server in this process that counts what reaches it. The fixed window is 100 per minute;
 * GCRA is burst 100 at 100 per hour, so that no new token can be earned during a run (see the
 * route below).
 */

const TOTAL = 300;
const CONCURRENCY = 50;
const LIMIT = 100;

const redisUp = await redisAvailable();
const prefix = `rampart-test:${randomUUID()}:`;
/**
 * The counters in Redis: `<prefix>rl:{<limit name>@<algorithm>:<limit>:<window ms>:<burst>|<key>}`,
 * the key being `route=<route name>`.
 */
const FIXED_KEY = `${prefix}rl:{fixed@fixed-window:100:60000:100|route=fixed}`;
const GCRA_KEY = `${prefix}rl:{gcra@gcra:100:3600000:100|route=gcra}`;

interface Hit {
  /** Which gateway process answered (0 or 1). */
  gateway: number;
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

let dir: string;
let upstream: TestUpstream;
let gateways: Gateway[] = [];
let agent: Agent;
let redis: Redis;

function config(upstreamUrl: string): string {
  const limited = (name: string, limit: Record<string, unknown>) => ({
    name,
    match: { path: `/${name}`, methods: ['GET'] },
    upstream: 'app',
    public: true,
    allowInsecure: true,
    policies: { 'rate-limit': { limits: [{ name, key: ['route'], store: 'redis', ...limit }] } },
  });
  return stringify({
    server: {
      listen: { host: '127.0.0.1', port: 0 },
      // Process-wide shedding would answer 503 RMP_OVERLOADED if a process stalled for a second
      // on this busy 2-core machine: answers that are not the limiter's. Off here.
      overload: { maxEventLoopDelay: '0s' },
    },
    admin: { enabled: false },
    log: { level: 'info' },
    redis: { url: 'redis://127.0.0.1:6379', keyPrefix: prefix },
    upstreams: { app: { targets: [{ url: upstreamUrl }] } },
    // The default per-address limit (600/min) would count these requests too: off, so only the
    // limit under test decides.
    defaults: { 'ip-rate-limit': false },
    routes: [
      limited('fixed', { algorithm: 'fixed-window', limit: LIMIT, window: '1m' }),
      // GCRA has no window to stay inside: past the burst it admits one request per
      // window / limit. At 100 per minute that is one every 600 ms, less than a busy machine
      // takes for 300 requests through two processes (measured: 200 ms idle, 500 ms with a second
      // test file running), so "exactly 100" would depend on speed. At 100 per hour the next
      // token is 36 s away and the burst of 100 is all any run can get.
      limited('gcra', { algorithm: 'gcra', limit: LIMIT, window: '1h', burst: LIMIT }),
      // Not limited: opens the keep-alive connections and warms both processes' proxy path
      // before a run, so the run itself is short.
      { name: 'warm', match: { path: '/warm', methods: ['GET'] }, upstream: 'app', public: true, allowInsecure: true },
    ],
  });
}

beforeAll(async () => {
  if (!redisUp) return;
  upstream = await startUpstream(undefined, { readBody: false });
  dir = mkdtempSync(join(tmpdir(), 'rampart-cluster-'));
  const file = join(dir, 'rampart.yaml');
  writeFileSync(file, config(upstream.url));
  gateways = await Promise.all([startGateway(file), startGateway(file)]);
  // Enough connections per process that CONCURRENCY requests are truly in flight at once.
  agent = new Agent({ connections: CONCURRENCY, keepAliveTimeout: 30_000 });
  redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true });
  await redis.connect();
});

afterAll(async () => {
  await killAll();
  await agent?.close();
  await upstream?.close();
  if (redis !== undefined) {
    // Only this run's two counters: the shared server is never flushed.
    await redis.del(FIXED_KEY, GCRA_KEY);
    await redis.quit();
  }
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

async function get(gateway: number, path: string): Promise<Hit> {
  const res = await request(`${gateways[gateway]!.url}${path}`, { dispatcher: agent });
  return { gateway, status: res.statusCode, headers: res.headers as IncomingHttpHeaders, body: await res.body.text() };
}

/** `total` GETs, alternating between the two processes, at most `concurrency` in flight. */
async function hammer(path: string, total: number, concurrency: number): Promise<Hit[]> {
  const hits: Hit[] = [];
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      hits.push(await get(i % 2, path));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return hits;
}

async function warmUp(): Promise<void> {
  const hits = await hammer('/warm', 2 * CONCURRENCY, CONCURRENCY);
  expect(hits.filter((h) => h.status !== 200).map((h) => `${h.status} ${h.body}`)).toEqual([]);
}

/**
 * Fixed windows are calendar windows on Redis's clock (this host's clock): a run that straddled
 * hh:mm:59 → hh:mm+1:00 would rightly admit up to 200. When less than `marginMs` is left in the
 * current minute, this waits for the next one to start. It is a wait on the clock itself (what the
 * algorithm is defined by), not on the system under test, and at most `marginMs`.
 */
async function awayFromWindowEdge(windowMs = 60_000, marginMs = 15_000): Promise<void> {
  const left = windowMs - (Date.now() % windowMs);
  if (left < marginMs) await new Promise((resolve) => setTimeout(resolve, left + 50));
}

function upstreamCount(path: string): number {
  return upstream.requests.filter((r) => r.url === path).length;
}

/** A number from the `RateLimit` header (`r`: remaining, `t`: seconds until reset). */
const field = (h: Hit, name: 'r' | 't') => Number(new RegExp(`;${name}=(\\d+)`).exec(String(h.headers.ratelimit))![1]);

/**
 * Exactly LIMIT of the hits are 200 and every other one is a 429: a complete RMP_RATE_LIMITED
 * problem with an integer Retry-After ≥ 1 and the RateLimit headers.
 */
function expectExactlyLimitAdmitted(hits: Hit[], name: string, windowSeconds: number): { admitted: Hit[]; refused: Hit[] } {
  expect(hits).toHaveLength(TOTAL);
  const admitted = hits.filter((h) => h.status === 200);
  const refused = hits.filter((h) => h.status === 429);
  const others = hits.filter((h) => h.status !== 200 && h.status !== 429).map((h) => `${h.status} ${h.body}`);
  expect({ admitted: admitted.length, refused: refused.length, others }).toEqual({ admitted: LIMIT, refused: TOTAL - LIMIT, others: [] });
  // Both processes took part, each with its half of the requests: the limit is shared, not per process.
  for (const g of [0, 1]) {
    expect(hits.filter((h) => h.gateway === g)).toHaveLength(TOTAL / 2);
    expect(admitted.some((h) => h.gateway === g)).toBe(true);
    expect(refused.some((h) => h.gateway === g)).toBe(true);
  }
  for (const h of refused) {
    expect(h.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(JSON.parse(h.body)).toMatchObject({ status: 429, code: 'RMP_RATE_LIMITED', title: 'Too many requests', detail: `Rate limit '${name}' exceeded.` });
    expect(String(h.headers['retry-after'])).toMatch(/^[1-9]\d*$/);
    expect(h.headers['ratelimit-policy']).toBe(`"${name}";q=${LIMIT};w=${windowSeconds}`);
    expect(h.headers.ratelimit).toMatch(new RegExp(`^"${name}";r=0;t=\\d+$`));
  }
  // One atomic counter: every admitted request saw a different remaining, 99 down to 0,
  // whichever process it went through.
  expect(admitted.map((h) => field(h, 'r')).sort((a, b) => a - b)).toEqual(Array.from({ length: LIMIT }, (_, i) => i));
  for (const h of admitted) {
    expect(h.headers['ratelimit-policy']).toBe(`"${name}";q=${LIMIT};w=${windowSeconds}`);
    expect(h.headers.ratelimit).toMatch(new RegExp(`^"${name}";r=\\d+;t=\\d+$`));
  }
  return { admitted, refused };
}

describe.skipIf(!redisUp)('two gateway processes sharing Redis', () => {
  it(`fixed-window, ${LIMIT} per minute per key: exactly ${LIMIT} of ${TOTAL} concurrent requests admitted across both, the rest 429`, async () => {
    await warmUp();
    await awayFromWindowEdge();
    const hits = await hammer('/fixed', TOTAL, CONCURRENCY);

    const { refused } = expectExactlyLimitAdmitted(hits, 'fixed', 60);
    // Refused until the window ends: Retry-After is the RateLimit reset, within the minute.
    for (const h of refused) {
      expect(Number(h.headers['retry-after'])).toBe(field(h, 't'));
      expect(field(h, 't')).toBeLessThanOrEqual(60);
    }
    expect(upstreamCount('/fixed')).toBe(LIMIT);
    // The count lives in the shared Redis, under this run's prefix.
    expect(await redis.hget(FIXED_KEY, 'b')).toBe(String(LIMIT));
  });

  it(`gcra, burst ${LIMIT}: exactly ${LIMIT} of ${TOTAL} concurrent requests admitted across both, the rest 429`, async () => {
    await warmUp();
    const started = performance.now();
    const hits = await hammer('/gcra', TOTAL, CONCURRENCY);
    const elapsed = performance.now() - started;

    const { refused } = expectExactlyLimitAdmitted(hits, 'gcra', 3600);
    // The next request is allowed one emission interval (36 s) after the first: Retry-After
    // counts down from 36 while the run lasts.
    for (const h of refused) {
      expect(Number(h.headers['retry-after'])).toBeLessThanOrEqual(36);
      expect(Number(h.headers['retry-after'])).toBeGreaterThanOrEqual(36 - Math.ceil(elapsed / 1000));
    }
    expect(upstreamCount('/gcra')).toBe(LIMIT);
    expect(await redis.exists(GCRA_KEY)).toBe(1);
  });
});
