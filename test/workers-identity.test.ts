import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { freshStorage, postgresAvailable } from './helpers/identity.js';
import { killAll, spawnCli, type CliProcess } from './helpers/process.js';
import { redisAvailable } from './helpers/services.js';

/**
 * The identity service on two workers (`--workers 2`), on PostgreSQL and Redis as several nodes
 * would be, in development mode with `tls: auto` and no `masterKey`: the primary makes the
 * development certificate and master key once (the workers reuse them rather than racing to make
 * their own), a user registered through one worker logs in through either, and a logout through
 * one is refused by both. Every request opens its own connection, so the primary hands them to
 * the workers in turn; which worker answered is read from the access log.
 */

const up = (await postgresAvailable()) && (await redisAvailable());

let dir: string;
let cli: CliProcess;
let url: string;
let agent: Agent;
let drop: (() => Promise<void>) | undefined;

beforeAll(async () => {
  if (!up) return;
  dir = mkdtempSync(join(tmpdir(), 'rampart-workers-identity-'));
  const storage = await freshStorage('postgres');
  drop = storage.drop;
  const file = join(dir, 'rampart.yaml');
  writeFileSync(
    file,
    stringify({
      mode: 'development',
      server: { listen: { host: '127.0.0.1', port: 0 }, tls: 'auto', overload: { maxEventLoopDelay: '0s' } },
      admin: { enabled: false },
      log: { level: 'info' },
      storage: { url: storage.url },
      redis: { url: 'redis://127.0.0.1:6379', keyPrefix: `rampart-test:${randomUUID()}:` },
      identity: { issuer: 'https://localhost', registration: 'open' },
      routes: [],
    }),
  );
  cli = spawnCli(['start', '-c', file, '--workers', '2']);
  await cli.waitForLog((r) => r.worker === 'primary' && r.workers === 2, { timeoutMs: 45_000 });
  const startup = await cli.waitForEvent('sys_startup');
  url = /gateway on (https:\/\/127\.0\.0\.1:\d+)/.exec(String(startup.record.msg))![1]!;
  agent = new Agent({ connect: { ca: readFileSync(join(dir, 'data', 'tls', 'localhost.crt'), 'utf8'), servername: 'localhost' }, headersTimeout: 10_000, bodyTimeout: 10_000 });
}, 60_000);

afterAll(async () => {
  await killAll();
  await agent?.close();
  await drop?.();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

let ids = 0;
/** One request on a connection of its own; its status, body and the worker that answered it. */
async function call(method: 'GET' | 'POST', path: string, options: { token?: string; json?: unknown } = {}): Promise<{ status: number; body: string; worker: number }> {
  const id = `wi-${process.pid}-${++ids}`;
  const headers: Record<string, string> = { 'x-request-id': id };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.json !== undefined) headers['content-type'] = 'application/json';
  const res = await request(`${url}${path}`, { method, headers, body: options.json === undefined ? undefined : JSON.stringify(options.json), dispatcher: agent, reset: true });
  const body = await res.body.text();
  const { record } = await cli.waitForLog((r) => r.type === 'access' && r.requestId === id, { timeoutMs: 10_000 });
  return { status: res.statusCode, body, worker: record.worker as number };
}

describe.skipIf(!up)('the identity service on --workers 2 (PostgreSQL, Redis)', () => {
  it('one development certificate and master key, made by the primary; both workers reuse them', async () => {
    // Each worker's lines reach the log in batches: wait for both workers' (they precede sys_startup).
    for (const worker of [1, 2]) await cli.waitForLog((r) => r.event === 'sys_startup' && r.worker === worker);
    const certs = cli.logs().filter((r) => typeof r.msg === 'string' && r.msg.startsWith('DEVELOPMENT CERTIFICATE'));
    expect(certs.map((r) => [r.worker, r.created]).sort()).toEqual([[1, false], [2, false]]);
    const keys = cli.logs().filter((r) => typeof r.masterKeyFile === 'string');
    expect(keys.map((r) => [r.worker, r.created]).sort()).toEqual([[1, false], [2, false]]);
    expect(keys[0]!.masterKeyFile).toBe(keys[1]!.masterKeyFile);
    expect(existsSync(String(keys[0]!.masterKeyFile))).toBe(true);
  });

  it('registered through one worker, logged in through both; a logout through one is refused by both', async () => {
    const credentials = { email: 'ada@example.com', password: 'correct horse battery staple' };
    expect((await call('POST', '/api/v1/auth/register', { json: credentials })).status).toBe(202);
    const logins = [];
    for (let i = 0; i < 4; i++) logins.push(await call('POST', '/api/v1/auth/login', { json: credentials }));
    expect(logins.map((l) => l.status)).toEqual([200, 200, 200, 200]);
    expect(new Set(logins.map((l) => l.worker))).toEqual(new Set([1, 2]));
    const token = (JSON.parse(logins[0]!.body) as { access_token: string }).access_token;
    const before = [];
    for (let i = 0; i < 4; i++) before.push(await call('GET', '/api/v1/users/me', { token }));
    expect(before.map((b) => b.status)).toEqual([200, 200, 200, 200]);
    const logout = await call('POST', '/api/v1/auth/logout', { token });
    expect(logout.status).toBe(204);
    // Refused by every worker from then on (the revocation is in Redis, announced over pub/sub).
    const after = [];
    for (let i = 0; i < 6; i++) after.push(await call('GET', '/api/v1/users/me', { token }));
    console.log(`workers-identity: logout through worker ${logout.worker}; afterwards ${after.map((a) => `worker ${a.worker} → ${a.status}`).join(', ')}`);
    expect(after.map((a) => a.status)).toEqual([401, 401, 401, 401, 401, 401]);
    expect(after.every((a) => a.body.includes('RMP_AUTH_TOKEN_REVOKED'))).toBe(true);
    expect(new Set(after.map((a) => a.worker))).toEqual(new Set([1, 2]));
  }, 60_000);
});
