import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { stringify } from 'yaml';
import { GatewayRuntime } from '../../src/gateway/runtime.js';
import { builtinPolicies } from '../../src/policies/index.js';

/** Names of the authentication policies (a route with one of them is not made public). */
const AUTHENTICATION = [...builtinPolicies.values()].filter((p) => p.phase === 'authenticate').map((p) => p.name);

export interface LogCapture {
  lines: Record<string, unknown>[];
  stream: Writable;
  /** Resolves with the first line (already written or to come) matching `predicate`. */
  waitFor(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

export function captureLogs(): LogCapture {
  const lines: Record<string, unknown>[] = [];
  const waiters: { predicate: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  let pending = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      pending += chunk.toString('utf8');
      let nl: number;
      while ((nl = pending.indexOf('\n')) !== -1) {
        const text = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (text.trim() === '') continue;
        const line = JSON.parse(text) as Record<string, unknown>;
        lines.push(line);
        for (const w of [...waiters]) {
          if (w.predicate(line)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(line);
          }
        }
      }
      cb();
    },
  });
  return {
    lines,
    stream,
    waitFor(predicate, timeoutMs = 10_000) {
      const found = lines.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('timed out waiting for a log line')), timeoutMs);
        waiters.push({ predicate, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      });
    },
  };
}

export interface TestGateway {
  runtime: GatewayRuntime;
  url: string;
  /** The plain-HTTP listener's URL when the config has `server.http`. */
  plainUrl: string | undefined;
  logs: LogCapture;
  configFile: string;
  close(): Promise<void>;
}

/**
 * Starts the gateway in this process on port 0 from a config object (written to a temp file).
 * Tests talk plain HTTP to 127.0.0.1, so every route gets `allowInsecure: true` unless it says
 * otherwise (or the config has `server.tls`): the HTTPS tests set it, or `tls`, themselves. The
 * default per-IP rate limit is raised to 1 000 000 per minute unless `defaults` sets one, and a
 * route with no authentication gets `public: true` unless it says otherwise.
 */
export async function startGateway(config: Record<string, unknown>, options: { captureLogs?: boolean } = {}): Promise<TestGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-test-'));
  const configFile = join(dir, 'rampart.yaml');
  const server = (config.server ?? {}) as Record<string, unknown>;
  const plainHttp = server.tls === undefined;
  // Routes without an authentication policy of their own or in `defaults` are made public (the
  // rule that they must say so is tested with explicit configs).
  const authenticates = (policies: unknown) => typeof policies === 'object' && policies !== null && AUTHENTICATION.some((name) => name in policies);
  const defaultsAuth = authenticates(config.defaults);
  const open = (r: Record<string, unknown>) => (defaultsAuth || authenticates(r.policies) ? {} : { public: true });
  const routes = Array.isArray(config.routes)
    ? (config.routes as Record<string, unknown>[]).map((r) => ({ ...open(r), ...(plainHttp ? { allowInsecure: true } : {}), ...r }))
    : config.routes;
  // Suites send many requests from 127.0.0.1: the default per-IP limit (600/min) is raised for
  // them unless a test sets its own.
  const defaults = (config.defaults ?? {}) as Record<string, unknown>;
  const full = {
    ...config,
    defaults: { 'ip-rate-limit': { limit: 1_000_000 }, ...defaults },
    ...(routes !== undefined ? { routes } : {}),
    server: {
      ...server,
      listen: { host: '127.0.0.1', port: 0 },
      ...(server.http !== undefined ? { http: { listen: { host: '127.0.0.1', port: 0 } } } : {}),
    },
    admin: { enabled: false, ...(config.admin as object) },
  };
  writeFileSync(configFile, stringify(full));
  const logs = captureLogs();
  // `captureLogs: false`: the config's own `log.destination` is used (and `logs` stays empty).
  const runtime = await GatewayRuntime.start({ configFile, ...(options.captureLogs === false ? {} : { logStream: logs.stream }) });
  return {
    runtime,
    url: runtime.url,
    plainUrl: runtime.plainUrl,
    logs,
    configFile,
    close: () => runtime.shutdown('test'),
  };
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export interface TestUpstream {
  url: string;
  port: number;
  server: Server;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/**
 * A real HTTP upstream on 127.0.0.1:0 that records what it receives. The default handler answers
 * 200 with a JSON echo of method and url.
 */
export async function startUpstream(
  handler?: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void,
  options: { readBody?: boolean } = {},
): Promise<TestUpstream> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    if (options.readBody === false) {
      requests.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.alloc(0) });
      (handler ?? echo)(req, res, Buffer.alloc(0));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      (handler ?? echo)(req, res, body);
    });
  });
  server.keepAliveTimeout = 2000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function echo(req: IncomingMessage, res: ServerResponse): void {
  const body = JSON.stringify({ method: req.method, url: req.url });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** A free port nobody listens on (bound then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Gateways and upstreams started through this are closed after each test:
 * `const use = closeAfterEach(afterEach); const up = await use.upstream(); const gw = await use.gateway({...})`.
 */
export function closeAfterEach(afterEach: (fn: () => Promise<void>) => void) {
  const open: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const resource of open.splice(0).reverse()) await resource.close();
  });
  return {
    async gateway(config: Record<string, unknown>, options?: { captureLogs?: boolean }): Promise<TestGateway> {
      const gw = await startGateway(config, options);
      open.push(gw);
      return gw;
    },
    async upstream(...args: Parameters<typeof startUpstream>): Promise<TestUpstream> {
      const up = await startUpstream(...args);
      open.push(up);
      return up;
    },
  };
}
