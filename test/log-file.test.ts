import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError } from '../src/config/errors.js';
import { GatewayRuntime } from '../src/gateway/runtime.js';
import { closeAfterEach, type TestGateway } from './helpers/gateway.js';
import { send } from './helpers/http.js';
import { killAll, runCli, spawnCli } from './helpers/process.js';

/**
 * `log.destination` as a file, with `log.rotate`: rotation at the size bound with every line kept
 * whole and in order, `maxFiles` respected, the one redaction list applied in the file, SIGHUP's
 * reopen, and a path that cannot be opened refused at start.
 */

const use = closeAfterEach(afterEach);

async function gateway(log: Record<string, unknown>) {
  const upstream = await use.upstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
  return use.gateway(
    {
      log,
      upstreams: { app: { targets: [{ url: upstream.url }] } },
      routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app' }],
    },
    { captureLogs: false },
  );
}

/** The log files of `file` oldest first (`file.N` … `file.1`, `file`), each parsed line by line. */
function readRotated(file: string): { name: string; size: number; lines: Record<string, unknown>[] }[] {
  const base = file.split('/').pop()!;
  const names = readdirSync(dirname(file)).filter((n) => n === base || n.startsWith(`${base}.`));
  const order = (n: string) => (n === base ? 0 : Number(n.slice(base.length + 1)));
  return names
    .sort((a, b) => order(b) - order(a))
    .map((name) => {
      const text = readFileSync(join(dirname(file), name), 'utf8');
      expect(text === '' || text.endsWith('\n'), `${name} ends with a whole line`).toBe(true);
      // JSON.parse throws on a line split across two files.
      return { name, size: statSync(join(dirname(file), name)).size, lines: text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) };
    });
}

async function sendMany(gw: TestGateway, n: number, from = 0): Promise<void> {
  for (let i = from; i < from + n; i++) await send(gw.url, `/api/item/${i}`);
}

const accessPaths = (files: ReturnType<typeof readRotated>) => files.flatMap((f) => f.lines.filter((l) => l.type === 'access').map((l) => l.path));
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => `/api/item/${from + i}`);

describe('log file', () => {
  it('rotates at the size bound; every line is kept, whole and in order, across the files', async () => {
    const gw = await gateway({ destination: './logs/access.log', rotate: { maxSize: '16KiB', maxFiles: 50 } });
    const file = join(dirname(gw.configFile), 'logs', 'access.log');
    await sendMany(gw, 400);
    await gw.close();
    const files = readRotated(file);
    // ~400 lines of ~330 bytes: about 8 rotations.
    expect(files.length).toBeGreaterThanOrEqual(6);
    expect(accessPaths(files)).toEqual(range(0, 400));
    // A file exceeds the bound by at most one batched write (sonic-boom's 16 KiB), and a rotated
    // file has reached it (what was written is counted, not what waits in the buffer).
    for (const f of files) expect(f.size, f.name).toBeLessThan(16 * 1024 + 16 * 1024);
    for (const f of files.slice(0, -1)) expect(f.size, f.name).toBeGreaterThanOrEqual(16 * 1024);
  });

  it('keeps at most maxFiles rotated files, deleting the oldest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-logs-'));
    const file = join(dir, 'access.log');
    const gw = await gateway({ destination: file, rotate: { maxSize: '4KiB', maxFiles: 3 } });
    await sendMany(gw, 200);
    await gw.close();
    expect(readdirSync(dir).sort()).toEqual(['access.log', 'access.log.1', 'access.log.2', 'access.log.3']);
    const paths = accessPaths(readRotated(file));
    // The newest lines survive, contiguous and in order, ending with the last request.
    expect(paths.length).toBeGreaterThan(10);
    expect(paths).toEqual(range(200 - paths.length, paths.length));
  });

  it('under a flood, rotates by what was written: no empty rotated file, no line lost', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-logs-'));
    const file = join(dir, 'app.log');
    const gw = await gateway({ destination: file, rotate: { maxSize: '64KiB', maxFiles: 1000 } });
    // 1000 lines per turn of the event loop: far more than one batched write takes away.
    for (let turn = 0; turn < 20; turn++) {
      for (let i = 0; i < 1000; i++) gw.runtime.logger.info({ seq: turn * 1000 + i }, 'flood');
      await new Promise((r) => setImmediate(r));
    }
    await gw.close();
    const files = readRotated(file);
    expect(files.length).toBeGreaterThan(10);
    for (const f of files.slice(0, -1)) {
      expect(f.size, f.name).toBeGreaterThanOrEqual(64 * 1024);
      expect(f.size, f.name).toBeLessThan(64 * 1024 + 16 * 1024);
    }
    const seqs = files.flatMap((f) => f.lines.filter((l) => l.msg === 'flood').map((l) => l.seq as number));
    expect(seqs).toEqual(Array.from({ length: 20_000 }, (_, i) => i));
  });

  it('loses no line in synchronous bursts past a tiny bound, keeping maxFiles', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-logs-'));
    const file = join(dir, 'app.log');
    const gw = await gateway({ destination: file, rotate: { maxSize: '1KiB', maxFiles: 2 } });
    for (let burst = 0; burst < 5; burst++) {
      for (let i = 0; i < 500; i++) gw.runtime.logger.info({ seq: burst * 500 + i }, 'burst');
      await new Promise((r) => setTimeout(r, 20));
    }
    await gw.close();
    const files = readRotated(file);
    expect(files.map((f) => f.name)).toEqual(['app.log.2', 'app.log.1', 'app.log']);
    const seqs = files.flatMap((f) => f.lines.filter((l) => l.msg === 'burst').map((l) => l.seq as number));
    // Only maxFiles files are kept, so the oldest lines are gone, but what is kept is contiguous.
    expect(seqs.length).toBeGreaterThan(0);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => 2500 - seqs.length + i));
  });

  it('rotates by interval too, and not an empty file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-logs-'));
    const file = join(dir, 'access.log');
    const gw = await gateway({ destination: file, rotate: { maxSize: '100MiB', maxFiles: 5, interval: '1s' } });
    await sendMany(gw, 3);
    await new Promise((r) => setTimeout(r, 1300));
    await sendMany(gw, 2, 3);
    await new Promise((r) => setTimeout(r, 2300)); // two more ticks: the first rotates, the second finds nothing new
    await gw.close();
    const files = readRotated(file);
    expect(accessPaths(files)).toEqual(range(0, 5));
    expect(files.map((f) => f.name)).toEqual(['access.log.2', 'access.log.1', 'access.log']);
  });

  it('applies the one redaction list in the file: no Authorization header, password or token', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-logs-'));
    const file = join(dir, 'gateway.log');
    const gw = await gateway({ destination: file, rotate: { maxSize: '1MiB', maxFiles: 2 } });
    await send(gw.url, '/api/x?password=hunter2&access_token=tok-abc', { headers: { authorization: 'Bearer sekrit-jwt', cookie: 'sid=cookie-val' } });
    // Anything else logged through the gateway's logger goes through the same list.
    gw.runtime.logger.warn({ req: { headers: { authorization: 'Bearer sekrit-jwt' } }, headers: { 'x-api-key': 'key-123' }, body: { password: 'hunter2', user: 'ann' } }, 'a record with secrets');
    await gw.close();
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('"path":"/api/x?password=[REDACTED]&access_token=[REDACTED]"');
    expect(text).toContain('"user":"ann"');
    for (const secret of ['hunter2', 'tok-abc', 'sekrit-jwt', 'cookie-val', 'key-123']) expect(text).not.toContain(secret);
  });

  it('reopens the file on demand (SIGHUP after an external logrotate moved it)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-logs-'));
    const file = join(dir, 'access.log');
    const gw = await gateway({ destination: file });
    await sendMany(gw, 20);
    // logrotate's default: rename, then signal. Lines still buffered land in the new file.
    renameSync(file, `${file}.moved`);
    gw.runtime.reopenLogs();
    await sendMany(gw, 20, 20);
    await gw.close();
    const moved = readRotated(`${file}.moved`).filter((f) => f.name === 'access.log.moved');
    const current = readRotated(file).filter((f) => f.name === 'access.log');
    expect(current[0]!.lines.length).toBeGreaterThan(0);
    expect([...accessPaths(moved), ...accessPaths(current)]).toEqual(range(0, 40));
  });

  it('refuses to start when the log file cannot be created, naming log.destination', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-logs-'));
    writeFileSync(join(dir, 'blocker'), 'a file, not a directory');
    const configFile = join(dir, 'rampart.yaml');
    writeFileSync(configFile, stringify({ log: { destination: './blocker/logs/access.log' }, admin: { enabled: false }, server: { listen: { host: '127.0.0.1', port: 0 } } }));
    const error = await GatewayRuntime.start({ configFile }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(/rampart\.yaml:\d+:\d+.*log\.destination.*cannot open the log file .*blocker\/logs\/access\.log: a part of the path is not a directory \(ENOTDIR\)/s);
    expect(existsSync(join(dir, 'blocker', 'logs'))).toBe(false);
  });

  it('refuses rotation of stdout and a bound under 1KiB', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-logs-'));
    const configFile = join(dir, 'rampart.yaml');
    writeFileSync(configFile, stringify({ log: { rotate: { maxSize: '10B' } }, admin: { enabled: false } }));
    const error = (await GatewayRuntime.start({ configFile }).catch((e: unknown) => e)) as ConfigError;
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain("rotation needs a file destination; log.destination is 'stdout'");
    expect(error.message).toContain('expected a size of at least 1KiB');
  });
});

describe('log file through the CLI', () => {
  afterEach(() => killAll());

  /** Resolves with the first line of `file` matching `test`, polling (the file is written in batches). */
  async function waitForLine(file: string, test: (l: Record<string, unknown>) => boolean, timeoutMs = 20_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (existsSync(file)) {
        const found = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>).find(test);
        if (found !== undefined) return found;
      }
      if (Date.now() > deadline) throw new Error(`no matching line in ${file}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('SIGHUP reopens the file after logrotate moved it; SIGTERM flushes it', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-logs-'));
    const file = join(dir, 'logs', 'rampart.log');
    const configFile = join(dir, 'rampart.yaml');
    writeFileSync(configFile, stringify({ log: { destination: './logs/rampart.log' }, admin: { enabled: false }, server: { listen: { host: '127.0.0.1', port: 0 } }, routes: [] }));
    const cli = spawnCli(['start', '-c', configFile]);
    const startup = await waitForLine(file, (l) => l.event === 'sys_startup');
    const url = /gateway on (http:\/\/127\.0\.0\.1:\d+)/.exec(String(startup.msg))![1]!;
    expect(cli.stdout).toEqual([]); // nothing on stdout: the file is the destination
    await send(url, '/before-rotation');
    await waitForLine(file, (l) => l.path === '/before-rotation');
    renameSync(file, `${file}.1`);
    cli.signal('SIGHUP');
    await waitForLine(file, (l) => l.event === 'sys_config_reload');
    await send(url, '/after-rotation');
    cli.signal('SIGTERM');
    expect((await cli.waitForExit()).code).toBe(0);
    const rotated = readFileSync(`${file}.1`, 'utf8');
    const current = readFileSync(file, 'utf8');
    expect(rotated).toContain('/before-rotation');
    expect(rotated).not.toContain('/after-rotation');
    // Written at shutdown, in the reopened file: nothing buffered is lost.
    expect(current).toContain('"path":"/after-rotation"');
    expect(current).toContain('Rampart stopped');
  });

  it('a log path that cannot be created stops the start with one clear error', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-logs-'));
    writeFileSync(join(dir, 'blocker'), 'a file');
    const configFile = join(dir, 'rampart.yaml');
    writeFileSync(configFile, stringify({ log: { destination: './blocker/rampart.log' }, admin: { enabled: false }, server: { listen: { host: '127.0.0.1', port: 0 } } }));
    const { code, stderr } = await runCli(['start', '-c', configFile]);
    expect(code).toBe(1);
    expect(stderr.join('\n')).toMatch(/rampart\.yaml:\d+:\d+: log\.destination: cannot open the log file .*blocker\/rampart\.log: a part of the path is not a directory \(EEXIST\)/);
    expect(stderr.join('\n')).not.toContain('    at '); // no stack trace
  });
});
