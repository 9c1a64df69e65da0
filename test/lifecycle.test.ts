import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { killAll, startGateway, type LogRecord } from './helpers/process.js';

/**
 * The gateway process lifecycle through the real CLI: SIGHUP reloads (good and bad configs),
 * `watch: true`, and SIGTERM/SIGINT draining. Upstreams are real HTTP servers in this process.
 */

/** 64 KiB + a tail, so "the full body" is more than one chunk on every hop. */
const SLOW_BODY = 'slow-body:' + 'x'.repeat(64 * 1024) + ':end';

interface Upstream {
  url: string;
  /** Paths of requests received, in order. */
  seen: string[];
  /** Resolves when a request for /slow has arrived (the Nth one, 1-based). */
  slowArrived(n?: number): Promise<void>;
  /** Lets every held /slow request answer. */
  releaseSlow(): void;
  close(): Promise<void>;
}

/** /old, /new, /renamed answer their name at once; /slow waits for `releaseSlow()`. */
async function startUpstream(): Promise<Upstream> {
  const seen: string[] = [];
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const arrivals: (() => void)[] = [];
  const arrived: Promise<void>[] = [];
  const slot = (n: number) => {
    while (arrived.length < n) arrived.push(new Promise<void>((r) => arrivals.push(r)));
    return arrived[n - 1]!;
  };
  let slowCount = 0;
  const server: Server = createHttpServer((req, res) => {
    const path = req.url ?? '';
    seen.push(path);
    if (path === '/slow') {
      slot(++slowCount);
      arrivals[slowCount - 1]!();
      void released.then(() => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(SLOW_BODY) });
        // Two writes, so the body crosses the proxy in more than one piece.
        res.write(SLOW_BODY.slice(0, 1000));
        setImmediate(() => res.end(SLOW_BODY.slice(1000)));
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`upstream ${path}`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    slowArrived: (n = 1) => slot(n),
    releaseSlow: () => release(),
    close: async () => {
      release();
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

interface Options {
  upstream: string;
  routes: string[];
  watch?: boolean;
  adminPort?: number;
  /** Replaces `match:` with a misspelt key in the first route (a broken config). */
  typo?: boolean;
}

function config(o: Options): string {
  const routes = o.routes
    .map(
      (name, i) => `  - name: ${name}
    ${o.typo === true && i === 0 ? 'mach' : 'match'}:
      path: /${name}
      methods: [GET]
    upstream: svc
    public: true
    allowInsecure: true`,
    )
    .join('\n');
  return `server:
  listen:
    host: 127.0.0.1
    port: 0
admin:
${o.adminPort === undefined ? '  enabled: false' : `  listen:\n    host: 127.0.0.1\n    port: ${o.adminPort}`}
log:
  level: info
watch: ${o.watch === true}
upstreams:
  svc:
    targets:
      - url: ${o.upstream}
routes:
${routes}
`;
}

interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request on its own connection (no keep-alive pool to interfere with draining). */
function get(url: string): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, headers: { connection: 'close' } }, (res) => {
      res.setEncoding('utf8');
      let body = '';
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A port that was free a moment ago (for the admin listener, whose address is not logged). */
async function freePort(): Promise<number> {
  const server = createNetServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** Resolves when a TCP connection to `port` is refused. */
function connectOutcome(port: number): Promise<'refused' | 'connected'> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNREFUSED' ? resolve('refused') : reject(error)));
  });
}

/** Sends raw bytes on one connection; `send` writes more; `ended` resolves with everything read. */
async function rawConnection(url: string): Promise<{ send: (data: string) => void; ended: Promise<string> }> {
  const { port } = new URL(url);
  const socket = connect(Number(port), '127.0.0.1');
  await once(socket, 'connect');
  socket.setEncoding('utf8');
  let data = '';
  socket.on('data', (chunk: string) => (data += chunk));
  const ended = new Promise<string>((resolve, reject) => {
    socket.once('close', () => resolve(data));
    socket.once('error', reject);
  });
  return { send: (d) => socket.write(d), ended };
}

/** The last HTTP/1.1 response in a raw stream: status, headers (lowercased) and body. */
function lastResponse(raw: string): Response {
  const start = raw.lastIndexOf('HTTP/1.1 ');
  const headEnd = raw.indexOf('\r\n\r\n', start);
  const [statusLine, ...headerLines] = raw.slice(start, headEnd).split('\r\n');
  const headers: IncomingHttpHeaders = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine!.split(' ')[1]), headers, body: raw.slice(headEnd + 4) };
}

let upstream: Upstream;
let dir: string;
let file: string;

beforeEach(async () => {
  upstream = await startUpstream();
  dir = mkdtempSync(join(tmpdir(), 'rampart-lifecycle-'));
  file = join(dir, 'rampart.yaml');
});
afterEach(async () => {
  await killAll();
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('reload on SIGHUP', () => {
  it('rejects a broken config with file:line:column errors, keeps serving the old routes and stays up', async () => {
    writeFileSync(file, config({ upstream: upstream.url, routes: ['old'] }));
    const { cli, url } = await startGateway(file);
    expect(await get(`${url}/old`)).toMatchObject({ status: 200, body: 'upstream /old' });

    // Line 16 is `    mach:` (the typo); `renamed` would replace `old` if the config were taken.
    writeFileSync(file, config({ upstream: upstream.url, routes: ['renamed'], typo: true }));
    const from = cli.stdout.length;
    cli.signal('SIGHUP');
    const { record: failed } = await cli.waitForEvent('sys_config_reload_fail', { from });
    expect(failed).toMatchObject({ level: 'warn', type: 'event', event: 'sys_config_reload_fail' });

    const rejected = cli.logs(from).find((r) => typeof r.msg === 'string' && r.msg.startsWith('config reload rejected'));
    expect(rejected, cli.transcript()).toBeDefined();
    expect(rejected!.level).toBe('error');
    expect(rejected!.errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^${escape(file)}:16:5: routes\\[0\\]\\.mach: unknown key 'mach'`)),
        expect.stringMatching(new RegExp(`^${escape(file)}:15:5: routes\\[0\\]: missing required key 'match'$`)),
      ]),
    );
    expect(rejected!.errors).toHaveLength(2);
    expect(cli.logs(from).some((r) => r.event === 'sys_config_reload')).toBe(false);

    // The old config still serves, the new one was not taken.
    expect(await get(`${url}/old`)).toMatchObject({ status: 200, body: 'upstream /old' });
    const renamed = await get(`${url}/renamed`);
    expect(renamed.status).toBe(404);
    expect(JSON.parse(renamed.body)).toMatchObject({ code: 'RMP_ROUTE_NOT_FOUND', status: 404 });
    expect(cli.running).toBe(true);
    expect(cli.stderr).toEqual([]);
  });

  it('serves a route added by a good config, and a request started before the reload finishes in full', async () => {
    writeFileSync(file, config({ upstream: upstream.url, routes: ['old', 'slow'] }));
    const { cli, url } = await startGateway(file);
    const before = await get(`${url}/new`);
    expect(before.status).toBe(404);
    expect(JSON.parse(before.body)).toMatchObject({ code: 'RMP_ROUTE_NOT_FOUND' });

    const slow = get(`${url}/slow`);
    await upstream.slowArrived(1);

    writeFileSync(file, config({ upstream: upstream.url, routes: ['old', 'slow', 'new'] }));
    const from = cli.stdout.length;
    cli.signal('SIGHUP');
    const { record: reloaded } = await cli.waitForEvent('sys_config_reload', { from });
    expect(reloaded.data).toMatchObject({ routes: 3 });

    expect(await get(`${url}/new`)).toMatchObject({ status: 200, body: 'upstream /new' });
    expect(await get(`${url}/old`)).toMatchObject({ status: 200, body: 'upstream /old' });

    // The held request was on the old pipeline; retiring it must not cut it off.
    upstream.releaseSlow();
    const done = await slow;
    expect(done.status).toBe(200);
    expect(done.body).toBe(SLOW_BODY);
    const access = await cli.waitForLog((r) => r.type === 'access' && r.path === '/slow', { from });
    expect(access.record).toMatchObject({ status: 200, route: 'slow', aborted: false });
    expect(cli.running).toBe(true);
  });
});

describe('watch: true', () => {
  it('reloads when the config file is rewritten', async () => {
    writeFileSync(file, config({ upstream: upstream.url, routes: ['old'], watch: true }));
    const { cli, url } = await startGateway(file);
    expect((await get(`${url}/new`)).status).toBe(404);

    const from = cli.stdout.length;
    writeFileSync(file, config({ upstream: upstream.url, routes: ['old', 'new'], watch: true }));
    const { record } = await cli.waitForEvent('sys_config_reload', { from });
    expect(record.data).toMatchObject({ routes: 2 });
    expect(await get(`${url}/new`)).toMatchObject({ status: 200, body: 'upstream /new' });
  });
});

describe('shutdown', () => {
  it('SIGTERM drains the request in flight, refuses new work, then exits 0', async () => {
    const adminPort = await freePort();
    writeFileSync(file, config({ upstream: upstream.url, routes: ['old', 'slow'], adminPort }));
    const { cli, url } = await startGateway(file);
    const gatewayPort = Number(new URL(url).port);
    const ready = await get(`http://127.0.0.1:${adminPort}/readyz`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toMatchObject({ status: 'ready', routes: 2 });

    // Two requests held by the upstream: one plain, one on a connection we pipeline on later.
    const slow = get(`${url}/slow`);
    await upstream.slowArrived(1);
    const pipelined = await rawConnection(url);
    pipelined.send('GET /slow HTTP/1.1\r\nHost: gateway\r\n\r\n');
    await upstream.slowArrived(2);

    const from = cli.stdout.length;
    cli.signal('SIGTERM');
    const { record: shutdown } = await cli.waitForEvent('sys_shutdown', { from });
    expect(String(shutdown.msg)).toContain('SIGTERM');

    // Draining is visible and deterministic here: the held requests keep the process draining.
    const readyz = await get(`http://127.0.0.1:${adminPort}/readyz`);
    expect(readyz.status).toBe(503);
    expect(readyz.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(JSON.parse(readyz.body)).toMatchObject({ status: 503, code: 'RMP_SHUTTING_DOWN' });

    // A new request on a connection that was open before SIGTERM is answered 503.
    pipelined.send('GET /old HTTP/1.1\r\nHost: gateway\r\n\r\n');

    // New connections are refused once the listener is closed (polled: Fastify closes it a tick
    // after the signal is handled); any accepted before that must get the 503 too.
    for (;;) {
      if ((await connectOutcome(gatewayPort)) === 'refused') break;
      const early = await get(`${url}/old`).catch((error: NodeJS.ErrnoException) => error);
      if (early instanceof Error) {
        expect(['ECONNREFUSED', 'ECONNRESET']).toContain(early.code);
        continue;
      }
      expect(early.status).toBe(503);
      expect(JSON.parse(early.body)).toMatchObject({ code: 'RMP_SHUTTING_DOWN' });
    }
    const seenBefore = upstream.seen.length;
    expect(cli.running).toBe(true);

    upstream.releaseSlow();
    const done = await slow;
    expect(done.status).toBe(200);
    expect(done.body).toBe(SLOW_BODY);

    const raw = await pipelined.ended;
    expect(raw.startsWith('HTTP/1.1 200 ')).toBe(true);
    expect(raw).toContain(SLOW_BODY.slice(-2000));
    const refused = lastResponse(raw);
    expect(refused.status).toBe(503);
    expect(refused.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(refused.headers.connection).toBe('close');
    expect(JSON.parse(refused.body)).toMatchObject({ status: 503, code: 'RMP_SHUTTING_DOWN' });
    // Nothing new reached the upstream while draining.
    expect(upstream.seen.slice(seenBefore)).toEqual([]);

    expect(await cli.waitForExit()).toEqual({ code: 0, signal: null });
    const records: LogRecord[] = cli.logs(from);
    expect(records.some((r) => r.msg === 'Rampart stopped')).toBe(true);
    expect(records.some((r) => r.type === 'access' && r.path === '/slow' && r.status === 200)).toBe(true);
    expect(cli.stderr).toEqual([]);
  });

  it('SIGINT also exits 0', async () => {
    writeFileSync(file, config({ upstream: upstream.url, routes: ['old'] }));
    const { cli, url } = await startGateway(file);
    expect((await get(`${url}/old`)).status).toBe(200);
    const from = cli.stdout.length;
    cli.signal('SIGINT');
    const { record } = await cli.waitForEvent('sys_shutdown', { from });
    expect(String(record.msg)).toContain('SIGINT');
    expect(await cli.waitForExit()).toEqual({ code: 0, signal: null });
    expect(await connectOutcome(Number(new URL(url).port))).toBe('refused');
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
