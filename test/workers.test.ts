import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startUpstream, type TestUpstream } from './helpers/gateway.js';
import { killAll, runCli, spawnCli, type CliProcess, type LogRecord } from './helpers/process.js';

/**
 * `rampart start --workers 2` as a real process tree (the CLI from source, the primary forking
 * two workers with node:cluster): both workers serve the one port, `/metrics` sums them, a worker
 * killed with SIGKILL under load is restarted and only its requests in flight fail, SIGHUP reaches
 * every worker, a crash loop backs off, SIGTERM drains and the primary exits 0. A config keeping
 * state in memory is refused before anything is forked.
 *
 * Which worker answered is read from the access log: the client sends its own `x-request-id`,
 * and every worker's lines carry `worker`.
 */

const TOTAL = 400;
const CONCURRENCY = 20;

let dir: string;
let file: string;
let upstream: TestUpstream;

function config(extraRoutes: Record<string, unknown>[] = []): string {
  const route = (name: string) => ({ name, match: { path: `/${name}`, methods: ['GET'] }, upstream: 'app', public: true, allowInsecure: true });
  return stringify({
    server: {
      listen: { host: '127.0.0.1', port: 0 },
      // A stalled process on this busy 2-core machine must not shed load: only the kill decides.
      overload: { maxEventLoopDelay: '0s' },
      drainTimeout: '5s',
    },
    admin: { listen: { host: '127.0.0.1', port: 0 } },
    log: { level: 'info' },
    // No Redis here: the per-IP limit (memory) is off, so nothing needs shared state.
    defaults: { 'ip-rate-limit': false },
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    routes: [route('r'), ...extraRoutes.map((r) => ({ ...route(String(r.name)), ...r }))],
  });
}

beforeAll(async () => {
  // A few milliseconds per answer, so that requests are truly in flight when a worker is killed.
  upstream = await startUpstream(
    (_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
        res.end('ok');
      }, 5);
    },
    { readBody: false },
  );
  dir = mkdtempSync(join(tmpdir(), 'rampart-workers-'));
  file = join(dir, 'rampart.yaml');
  writeFileSync(file, config());
});

afterAll(async () => {
  await killAll();
  await upstream?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

interface Cluster {
  cli: CliProcess;
  url: string;
  admin: string;
  /** Worker slot → pid, as the primary announced them. */
  pids: Map<number, number>;
}

async function startCluster(): Promise<Cluster> {
  const cli = spawnCli(['start', '-c', file, '--workers', '2']);
  const { record } = await cli.waitForLog((r) => r.worker === 'primary' && r.workers === 2, { timeoutMs: 30_000 });
  const pids = new Map((record.pids as number[]).map((pid, i) => [i + 1, pid]));
  const startup = await cli.waitForEvent('sys_startup');
  const msg = String(startup.record.msg);
  return { cli, url: /gateway on (http:\/\/127\.0\.0\.1:\d+)/.exec(msg)![1]!, admin: /admin on (http:\/\/127\.0\.0\.1:\d+)/.exec(msg)![1]!, pids };
}

type Outcome = { id: string; status: number } | { id: string; error: string };

let ids = 0;
async function get(base: string, path: string, agent: Agent): Promise<Outcome> {
  const id = `t-${process.pid}-${++ids}`;
  try {
    const res = await request(`${base}${path}`, { dispatcher: agent, headers: { 'x-request-id': id } });
    await res.body.dump();
    return { id, status: res.statusCode };
  } catch (error) {
    return { id, error: (error as { code?: string }).code ?? (error as Error).message };
  }
}

/** `total` GETs with at most `concurrency` in flight; `onProgress` after each answer. */
async function load(base: string, path: string, total: number, concurrency: number, onProgress?: (done: number) => void): Promise<Outcome[]> {
  // Bounded: a request that would hang is an error (counted), not a stuck test.
  const agent = new Agent({ connections: concurrency, keepAliveTimeout: 30_000, headersTimeout: 10_000, bodyTimeout: 10_000 });
  const out: Outcome[] = [];
  let next = 0;
  const loop = async () => {
    while (next < total) {
      next++;
      out.push(await get(base, path, agent));
      onProgress?.(out.length);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, loop));
  } finally {
    await agent.close();
  }
  return out;
}

/** The worker slot of each request id, once every one of `outcomes` has its access line. */
async function answeredBy(cli: CliProcess, outcomes: Outcome[]): Promise<Map<string, number>> {
  const wanted = new Set(outcomes.filter((o) => 'status' in o).map((o) => o.id));
  const seen = new Map<string, number>();
  const scan = () => {
    for (const r of cli.logs()) if (r.type === 'access' && typeof r.requestId === 'string' && wanted.has(r.requestId)) seen.set(r.requestId, r.worker as number);
  };
  scan();
  // Logs are flushed in batches (every 100 ms): wait for the last of them.
  await cli.waitForLine(() => (scan(), seen.size === wanted.size), { timeoutMs: 10_000 }).catch(() => undefined);
  scan();
  return seen;
}

async function requestsTotal(admin: string, route: string): Promise<number> {
  const res = await request(`${admin}/metrics`);
  const text = await res.body.text();
  expect(res.statusCode).toBe(200);
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = new RegExp(`^rampart_requests_total\\{route="${route}",[^}]*\\} (\\d+)$`).exec(line);
    if (m !== null) sum += Number(m[1]);
  }
  return sum;
}

const waitFor = (cli: CliProcess, test: (r: LogRecord) => boolean, from = 0, timeoutMs = 30_000) => cli.waitForLog(test, { from, timeoutMs });

describe('rampart start --workers 2', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster();
  }, 60_000);

  it('serves from both workers on one port, and /metrics counts the requests of both', async () => {
    expect([...cluster.pids.keys()]).toEqual([1, 2]);
    // Both workers said they started, on the same address.
    const w1 = await waitFor(cluster.cli, (r) => r.event === 'sys_startup' && r.worker === 1);
    const w2 = await waitFor(cluster.cli, (r) => r.event === 'sys_startup' && r.worker === 2);
    expect(String(w1.record.msg)).toContain(cluster.url);
    expect(String(w2.record.msg)).toContain(cluster.url);
    expect(w1.record.pid).toBe(cluster.pids.get(1));

    const outcomes = await load(cluster.url, '/r', 100, 10);
    expect(outcomes.filter((o) => !('status' in o) || o.status !== 200)).toEqual([]);
    const by = await answeredBy(cluster.cli, outcomes);
    expect(by.size).toBe(100);
    const perWorker = [1, 2].map((w) => [...by.values()].filter((v) => v === w).length);
    console.log(`workers: 100 requests over 10 keep-alive connections, answered ${perWorker[0]} by worker 1 and ${perWorker[1]} by worker 2`);
    expect(perWorker[0]).toBeGreaterThan(0);
    expect(perWorker[1]).toBeGreaterThan(0);
    // Whichever worker answers /metrics, it shows the sum of both.
    for (let i = 0; i < 4; i++) expect(await requestsTotal(cluster.admin, 'r')).toBe(100);
  });

  it('restarts a worker killed with SIGKILL under load; only its requests in flight fail', async () => {
    const from = cluster.cli.stdout.length;
    const victim = cluster.pids.get(1)!;
    let killedAt = 0;
    // Scraped 50 ms after the kill, while the killed worker is gone or restarting: answered from
    // the workers that serve, not held until a timeout.
    let scrape: Promise<{ status: number; ms: number; attempt: number }> | undefined;
    const outcomes = await load(cluster.url, '/r', TOTAL, CONCURRENCY, (done) => {
      if (done === 100 && killedAt === 0) {
        killedAt = performance.now();
        process.kill(victim, 'SIGKILL');
        // (The admin listener is shared too: a connection handed to the killed worker before the
        // primary saw it die is reset, and the scraper tries again, as Prometheus would.)
        scrape = new Promise((resolve) => setTimeout(resolve, 50)).then(async () => {
          for (let attempt = 1; ; attempt++) {
            const start = performance.now();
            try {
              const res = await request(`${cluster.admin}/metrics`, { reset: true, headersTimeout: 10_000, bodyTimeout: 10_000 });
              await res.body.dump();
              return { status: res.statusCode, ms: performance.now() - start, attempt };
            } catch (error) {
              if (attempt === 3) throw error;
            }
          }
        });
      }
    });
    expect(killedAt).toBeGreaterThan(0);
    const scraped = await scrape!;
    expect(scraped.status).toBe(200);
    expect(scraped.ms).toBeLessThan(3000);
    const restarted = await waitFor(cluster.cli, (r) => r.worker === 'primary' && r.slot === 1 && typeof r.restartMs === 'number', from);
    const exited = cluster.cli.logs(from).find((r) => r.worker === 'primary' && r.slot === 1 && r.signal === 'SIGKILL');
    expect(exited).toMatchObject({ workerPid: victim, restartInMs: 100 });
    const fresh = await waitFor(cluster.cli, (r) => r.event === 'sys_startup' && r.worker === 1, from);
    expect(fresh.record.pid).not.toBe(victim);
    expect(fresh.record.pid).toBe(restarted.record.workerPid);
    cluster.pids.set(1, restarted.record.workerPid as number);

    const errors = outcomes.filter((o): o is { id: string; error: string } => 'error' in o);
    const serverErrors = outcomes.filter((o) => 'status' in o && o.status >= 500);
    const ok = outcomes.filter((o) => 'status' in o && o.status >= 200 && o.status < 300);
    const kinds = [...new Set(errors.map((e) => e.error))];
    console.log(
      `workers: kill -9 of worker 1 (pid ${victim}) after 100 of ${TOTAL} answers at concurrency ${CONCURRENCY}: ${ok.length} 2xx, ${serverErrors.length} 5xx, ${errors.length} connection errors (${kinds.join(', ') || 'none'}); restarted as pid ${restarted.record.workerPid} in ${restarted.record.restartMs as number} ms after the exit (100 ms of it the backoff); /metrics scraped 50 ms after the kill answered ${scraped.status} in ${Math.round(scraped.ms)} ms (attempt ${scraped.attempt})`,
    );
    expect(outcomes).toHaveLength(TOTAL);
    // No answer is a 5xx: the only failures are the requests the killed worker had in flight
    // (one per keep-alive connection it held at most), which end as connection errors.
    expect(serverErrors).toEqual([]);
    expect(ok.length + errors.length).toBe(TOTAL);
    expect(errors.length).toBeLessThanOrEqual(CONCURRENCY);
    // None of the failed ones was answered by anyone: they have no access line in either worker.
    const failedIds = new Set(errors.map((e) => e.id));
    expect(cluster.cli.logs(from).filter((r) => r.type === 'access' && failedIds.has(String(r.requestId)) && r.worker === 2)).toEqual([]);

    // The restarted worker serves again, next to the other.
    const after = await load(cluster.url, '/r', 60, 10);
    expect(after.filter((o) => !('status' in o) || o.status !== 200)).toEqual([]);
    const by = await answeredBy(cluster.cli, after);
    expect(new Set(by.values())).toEqual(new Set([1, 2]));
  }, 60_000);

  it('SIGHUP: a valid config reaches every worker; an invalid one is refused by the primary and nobody changes', async () => {
    let from = cluster.cli.stdout.length;
    writeFileSync(file, 'server: [unclosed\n');
    cluster.cli.signal('SIGHUP');
    const rejected = await waitFor(cluster.cli, (r) => r.worker === 'primary' && r.msg === 'config reload rejected; every worker keeps the previous config', from);
    expect(String((rejected.record.errors as string[])[0])).toContain(file);
    expect(cluster.cli.logs(from).filter((r) => r.event === 'sys_config_reload' || r.event === 'sys_config_reload_fail')).toEqual([]);

    from = cluster.cli.stdout.length;
    writeFileSync(file, config([{ name: 'added' }]));
    cluster.cli.signal('SIGHUP');
    await waitFor(cluster.cli, (r) => r.event === 'sys_config_reload' && r.worker === 1, from);
    await waitFor(cluster.cli, (r) => r.event === 'sys_config_reload' && r.worker === 2, from);
    const outcomes = await load(cluster.url, '/added', 60, 10);
    expect(outcomes.filter((o) => !('status' in o) || o.status !== 200)).toEqual([]);
    const by = await answeredBy(cluster.cli, outcomes);
    expect(new Set(by.values())).toEqual(new Set([1, 2]));
  }, 60_000);

  it('a worker that keeps failing at start is restarted with a doubling delay, and recovers', async () => {
    const from = cluster.cli.stdout.length;
    // A restarted worker reads the file again: broken, each restart fails at once.
    writeFileSync(file, 'server: [unclosed\n');
    process.kill(cluster.pids.get(2)!, 'SIGKILL');
    const delays: number[] = [];
    let at = from;
    for (let i = 0; i < 4; i++) {
      const { record, index } = await waitFor(cluster.cli, (r) => r.worker === 'primary' && r.slot === 2 && typeof r.restartInMs === 'number', at);
      delays.push(record.restartInMs as number);
      at = index + 1;
    }
    console.log(`workers: crash loop of worker 2, restart delays ${delays.join(', ')} ms`);
    expect(delays).toEqual([100, 200, 400, 800]);
    // Worker 1 serves throughout.
    const during = await load(cluster.url, '/r', 20, 5);
    expect(during.filter((o) => !('status' in o) || o.status !== 200)).toEqual([]);
    // Fixed: the next attempt (1.6 s after the last) starts.
    writeFileSync(file, config([{ name: 'added' }]));
    const restarted = await waitFor(cluster.cli, (r) => r.worker === 'primary' && r.slot === 2 && typeof r.restartMs === 'number', at);
    cluster.pids.set(2, restarted.record.workerPid as number);
  }, 60_000);

  it('SIGTERM drains every worker and the primary exits 0', async () => {
    const from = cluster.cli.stdout.length;
    cluster.cli.signal('SIGTERM');
    const exit = await cluster.cli.waitForExit(20_000);
    expect(exit).toEqual({ code: 0, signal: null });
    const logs = cluster.cli.logs(from);
    expect(logs.filter((r) => r.msg === 'Rampart stopped').map((r) => r.worker).sort()).toEqual([1, 2]);
    expect(logs.at(-1)).toMatchObject({ worker: 'primary', msg: 'Rampart primary stopped' });
    for (const pid of cluster.pids.values()) expect(() => process.kill(pid, 0)).toThrow();
  }, 30_000);
});

describe('rampart start --workers 2 with a log file', () => {
  it('the primary writes every worker\'s lines to the one file, whole lines', async () => {
    const logged = join(dir, 'logged.yaml');
    const logFile = join(dir, 'logs', 'rampart.log');
    writeFileSync(logged, config().replace('log:\n  level: info\n', `log:\n  level: info\n  destination: ${logFile}\n`));
    const cli = spawnCli(['start', '-c', logged, '--workers', '2']);
    // Nothing on stdout: the lines go to the file; wait for both workers there.
    const deadline = Date.now() + 30_000;
    const lines = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter((l) => l !== '') : []);
    const url = async (): Promise<string> => {
      while (Date.now() < deadline) {
        const starts = lines().filter((l) => l.includes('"sys_startup"') && l.includes('"worker"'));
        const primary = lines().some((l) => l.includes('workers serving'));
        if (starts.length === 2 && primary) return /gateway on (http:\/\/127\.0\.0\.1:\d+)/.exec(starts[0]!)![1]!;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no startup lines in ${logFile}\n${cli.transcript()}`);
    };
    const outcomes = await load(await url(), '/r', 200, 10);
    expect(outcomes.filter((o) => !('status' in o) || o.status !== 200)).toEqual([]);
    cli.signal('SIGTERM');
    expect(await cli.waitForExit(20_000)).toEqual({ code: 0, signal: null });
    expect(cli.stdout).toEqual([]);
    const records = lines().map((l) => JSON.parse(l) as LogRecord);
    const access = records.filter((r) => r.type === 'access');
    expect(access).toHaveLength(200);
    expect(new Set(access.map((r) => r.worker))).toEqual(new Set([1, 2]));
    expect(records.at(-1)).toMatchObject({ worker: 'primary', msg: 'Rampart primary stopped' });
  }, 60_000);
});

describe('rampart start --workers: refused before forking', () => {
  it('a config keeping rate-limit counters in memory is refused with --workers 2, naming the settings', async () => {
    const refused = join(dir, 'memory.yaml');
    writeFileSync(
      refused,
      stringify({
        server: { listen: { host: '127.0.0.1', port: 0 } },
        admin: { enabled: false },
        upstreams: { app: { targets: [{ url: upstream.url }] } },
        routes: [{ name: 'r', match: { path: '/r' }, upstream: 'app', public: true, allowInsecure: true, policies: { 'rate-limit': { limits: [{ key: ['ip'], limit: 10, window: '1m', store: 'memory' }] } } }],
      }),
    );
    const { code, stdout, stderr } = await runCli(['start', '-c', refused, '--workers', '2']);
    expect(code).toBe(1);
    // Nothing was forked: no worker (nor the primary) wrote a line.
    expect(stdout).toEqual([]);
    const text = stderr.join('\n');
    expect(text).toContain('the per-IP rate limit (ip-rate-limit, on by default) counts in process memory');
    expect(text).toMatch(new RegExp(`${refused.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: routes\\[0\\]\\.policies\\.rate-limit\\.limits\\[0\\]\\.store: this rate limit counts in process memory`));
    expect(stderr.at(-1)).toBe('rampart: --workers 2 refused: 2 settings keep state in process memory that every worker must share (configure redis, and PostgreSQL for the identity service, or run --workers 1)');
  });

  it('a bad config fails in the primary with the usual located errors', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, stringify({ server: { listen: { host: '127.0.0.1', port: 'eighty' } } }));
    const { code, stdout, stderr } = await runCli(['start', '-c', bad, '--workers', '2']);
    expect(code).toBe(1);
    expect(stdout).toEqual([]);
    expect(stderr.join('\n')).toMatch(/bad\.yaml:\d+:\d+: server\.listen\.port/);
  });

  it('--workers must be a whole number, and start --help says what it does', async () => {
    const help = await runCli(['start', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout.join('\n')).toContain('-w, --workers <n>');
    expect(help.stdout.join(' ').replace(/\s+/g, ' ')).toContain('default: one per core when the config keeps its state in redis, else 1');
    for (const value of ['0', 'two', '1.5', '99999']) {
      const { code, stderr } = await runCli(['start', '-c', file, '--workers', value]);
      expect(code).toBe(2);
      expect(stderr.join('\n')).toContain(`--workers must be a whole number from 1 to 1024, not '${value}'`);
    }
  });

  it('a worker that cannot listen fails the start (exit 1), as one process would', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const busy = join(dir, 'busy.yaml');
      writeFileSync(busy, config().replace('port: 0\n', `port: ${port}\n`));
      const { code, stderr } = await runCli(['start', '-c', busy, '--workers', '2'], { timeoutMs: 30_000 });
      expect(code).toBe(1);
      expect(stderr.join('\n')).toContain(`cannot listen on 127.0.0.1:${port} (gateway): address already in use`);
    } finally {
      blocker.close();
    }
  }, 40_000);
});
