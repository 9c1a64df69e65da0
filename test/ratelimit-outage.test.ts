import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAfterEach, closedPort, type TestGateway } from './helpers/gateway.js';
import { problemOf, send, type Response } from './helpers/http.js';

/**
 * Acceptance: Redis lost mid-test — a private redis-server on a random port killed (never the
 * shared server): failOpen keeps serving with the local limiter, failClosed answers 503; both
 * recover when Redis is back, without a restart.
 *
 * The private server keeps nothing on disk (`--save '' --appendonly no`), so after the restart it
 * is empty: a counter that shows up again there was written after the recovery.
 */

const required = process.env.RAMPART_REQUIRE_SERVICES === '1';
const haveRedisServer = spawnSync('redis-server', ['--version']).error === undefined;
if (!haveRedisServer && !required) console.warn('SKIPPED: redis-server is not installed; the Redis outage tests skip (set RAMPART_REQUIRE_SERVICES=1 to fail instead)');

const LIMIT = 5;

interface PrivateRedis {
  port: number;
  child: ChildProcess;
  output: string[];
  exited: Promise<void>;
}

const servers = new Set<PrivateRedis>();
const dirs: string[] = [];

/** Starts `redis-server` on `port` (nothing persisted) and resolves once it accepts connections. */
async function startRedisServer(port: number): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-redis-'));
  dirs.push(dir);
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const server: PrivateRedis = { port, child, output, exited };
  servers.add(server);
  void exited.then(() => servers.delete(server));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server not ready within 10 s:\n${output.join('')}`)), 10_000);
    const onData = (chunk: Buffer) => {
      output.push(chunk.toString('utf8'));
      if (output.join('').includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited before it was ready:\n${output.join('')}`));
    });
  });
  return server;
}

/** SIGKILL, by this child's pid only, and wait until it is gone. */
async function kill(server: PrivateRedis): Promise<void> {
  if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
  await server.exited;
}

afterEach(async () => {
  await Promise.all([...servers].map(kill));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
const use = closeAfterEach(afterEach);

/** Reads one hash field from the private server on a short-lived connection. */
async function counter(port: number, key: string): Promise<string | null> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  await client.connect();
  try {
    return await client.hget(key, 'b');
  } finally {
    client.disconnect();
  }
}

/** Same as the cluster test: fixed windows are calendar minutes; see there. Waits at most `marginMs`. */
async function awayFromWindowEdge(windowMs = 60_000, marginMs = 15_000): Promise<void> {
  const left = windowMs - (Date.now() % windowMs);
  if (left < marginMs) await new Promise((resolve) => setTimeout(resolve, left + 50));
}

/**
 * Sends `GET path` until `done(response)`, at most `timeoutMs`: a bounded wait on a condition of
 * the system (the limiter's 1 s breaker, the Redis client's reconnect backoff), never a fixed sleep.
 */
async function until(gw: TestGateway, path: string, done: (res: Response) => boolean, timeoutMs = 10_000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await send(gw.url, path);
    if (done(res)) return res;
    if (Date.now() > deadline) throw new Error(`GET ${path} still answers ${res.status} after ${timeoutMs} ms: ${res.text}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function expectRateLimited(res: Response, name: string): void {
  expect(res.status).toBe(429);
  expect(problemOf(res)).toMatchObject({ status: 429, code: 'RMP_RATE_LIMITED', detail: `Rate limit '${name}' exceeded.` });
  expect(String(res.headers['retry-after'])).toMatch(/^[1-9]\d*$/);
  expect(res.headers.ratelimit).toMatch(new RegExp(`^"${name}";r=0;t=\\d+$`));
}

function expectUnavailable(res: Response): void {
  expect(res.status).toBe(503);
  expect(problemOf(res)).toMatchObject({ status: 503, code: 'RMP_RATE_LIMIT_UNAVAILABLE', title: 'Rate limiter unavailable' });
  expect(res.headers['retry-after']).toBe('1');
}

async function getEach(gw: TestGateway, path: string, n: number): Promise<Response[]> {
  const out: Response[] = [];
  for (let i = 0; i < n; i++) out.push(await send(gw.url, path));
  return out;
}

describe.skipIf(!haveRedisServer && !required)('Redis lost and back, without a restart', () => {
  it('onStoreFailure open counts locally, closed answers 503; both go back to Redis when it returns', async () => {
    const port = await closedPort();
    let redis = await startRedisServer(port);
    const prefix = `rampart-test:${randomUUID()}:`;
    const up = await use.upstream(undefined, { readBody: false });
    const limit = (name: string, onStoreFailure: 'open' | 'closed') => ({
      name,
      match: { path: `/${name}`, methods: ['GET'] },
      upstream: 'app',
      policies: { 'rate-limit': { limits: [{ name, key: ['route'], algorithm: 'fixed-window', limit: LIMIT, window: '1m', store: 'redis', onStoreFailure }] } },
    });
    const gw = await use.gateway({
      // Fail fast: a command Redis does not answer within 200 ms counts as a store failure.
      // The gateway shares this worker's event loop: a stall here must not turn into a 503
      // RMP_OVERLOADED that is not the limiter's answer (see the cluster test).
      server: { overload: { maxEventLoopDelay: '0s' } },
      redis: { url: `redis://127.0.0.1:${port}`, keyPrefix: prefix, connectTimeout: '200ms', commandTimeout: '200ms' },
      upstreams: { app: { targets: [{ url: up.url }] } },
      // Off, so the only limits (and the only store-failure warnings) are the two under test.
      defaults: { 'ip-rate-limit': false },
      routes: [limit('open', 'open'), limit('closed', 'closed')],
    });
    const seen = (path: string) => up.requests.filter((r) => r.url === path).length;
    const openKey = `${prefix}rl:{open@fixed-window:${LIMIT}:60000:${LIMIT}|route=open}`;
    const closedKey = `${prefix}rl:{closed@fixed-window:${LIMIT}:60000:${LIMIT}|route=closed}`;
    const storeFailed = () => gw.logs.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('rate-limit store failed'));

    // Both phases that count to 5 must each stay inside one calendar minute.
    await awayFromWindowEdge();

    // 1. Redis up: 5 pass, the 6th is refused, and the count is in (this private) Redis.
    for (const path of ['/open', '/closed']) {
      const answers = await getEach(gw, path, LIMIT + 1);
      expect(answers.map((r) => r.status)).toEqual([...Array(LIMIT).fill(200), 429]);
      expectRateLimited(answers[LIMIT]!, path.slice(1));
    }
    expect(await counter(port, openKey)).toBe(String(LIMIT));
    expect(await counter(port, closedKey)).toBe(String(LIMIT));
    expect({ open: seen('/open'), closed: seen('/closed') }).toEqual({ open: LIMIT, closed: LIMIT });
    expect(storeFailed()).toEqual([]);

    // 2. Redis gone (SIGKILL: no goodbye to the client).
    await kill(redis);
    // open: serves again, counted in this process from zero, and refuses past 5 there too.
    const open = await getEach(gw, '/open', LIMIT + 1);
    expect(open.map((r) => r.status)).toEqual([...Array(LIMIT).fill(200), 429]);
    expectRateLimited(open[LIMIT]!, 'open');
    // closed: refuses every request, at once and with the same answer.
    const closed = await getEach(gw, '/closed', 3);
    for (const res of closed) expectUnavailable(res);
    // Nothing refused (429 or 503) reached the upstream: only the 5 local passes did.
    expect({ open: seen('/open'), closed: seen('/closed') }).toEqual({ open: 2 * LIMIT, closed: LIMIT });

    // One warning per limit for the whole outage, not one per request.
    const openWarning = await gw.logs.waitFor((l) => l.msg === 'rate-limit store failed: counting in this process until it is back');
    expect(openWarning).toMatchObject({ level: 'warn', limit: 'open', store: 'redis', mode: 'open', failuresSoFar: 1 });
    const closedWarning = await gw.logs.waitFor((l) => l.msg === 'rate-limit store failed: refusing requests (onStoreFailure: closed) until it is back');
    expect(closedWarning).toMatchObject({ level: 'warn', limit: 'closed', store: 'redis', mode: 'closed', failuresSoFar: 1 });
    // The client noticed too (its reconnect was refused): without this, "back" below means nothing.
    const redisDown = await gw.logs.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('Redis unavailable'));
    expect(redisDown).toMatchObject({ level: 'warn', redis: `redis://127.0.0.1:${port}` });

    // 3. Redis back on the same port, empty. The gateway reconnects by itself.
    redis = await startRedisServer(port);
    await gw.logs.waitFor((l) => l.msg === 'Redis is back');
    // closed may refuse for up to its breaker's second more; every refusal is still the 503.
    const closedBack = await until(gw, '/closed', (res) => res.status !== 503 || (expectUnavailable(res), false));
    expect(closedBack.status).toBe(200);
    // open goes back to Redis once its own breaker is over; until then it still counts locally,
    // where its 5 are used up (429).
    const openBack = await until(gw, '/open', (res) => res.status !== 429 || (expectRateLimited(res, 'open'), false));
    expect(openBack.status).toBe(200);
    // Counted in Redis again: the empty server now holds exactly the one request each.
    expect(await counter(port, openKey)).toBe('1');
    expect(await counter(port, closedKey)).toBe('1');
    expect({ open: seen('/open'), closed: seen('/closed') }).toEqual({ open: 2 * LIMIT + 1, closed: LIMIT + 1 });

    expect(storeFailed()).toHaveLength(2);
    expect(gw.logs.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('Redis unavailable'))).toHaveLength(1);
    expect(gw.logs.lines.filter((l) => l.msg === 'Redis is back')).toHaveLength(1);
  });
});
