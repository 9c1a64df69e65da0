import { readFileSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';
import { send, type Response } from './http.js';
import pg from 'pg';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from './gateway.js';

export const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Whether the shared PostgreSQL answers. Without it, PostgreSQL tests skip with a visible message,
 * unless RAMPART_REQUIRE_SERVICES=1 (CI), where they run and fail.
 */
export async function postgresAvailable(): Promise<boolean> {
  if (process.env.RAMPART_REQUIRE_SERVICES === '1') return true;
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  const up = await client.connect().then(
    () => client.end().then(() => true),
    () => false,
  );
  if (!up) console.warn('SKIPPED: PostgreSQL is not running on 127.0.0.1:5432; its identity tests skip (set RAMPART_REQUIRE_SERVICES=1 to fail instead)');
  return up;
}

/** A storage URL of a fresh database: a SQLite file in the gateway's temp dir, or a PostgreSQL schema of its own. */
export async function freshStorage(backend: 'sqlite' | 'postgres'): Promise<{ url: string; drop(): Promise<void> }> {
  if (backend === 'sqlite') return { url: 'sqlite:./data/rampart.db', drop: () => Promise.resolve() };
  const schema = `rampart_test_${randomUUID().replace(/-/g, '')}`;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  await client.query(`CREATE SCHEMA "${schema}"`);
  await client.end();
  return {
    url: `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    async drop() {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await c.end();
    },
  };
}

export type Reply = Response;

export interface IdentityGateway {
  gw: TestGateway;
  url: string;
  ca: string;
  storageUrl: string;
  call(method: string, path: string, options?: { token?: string; json?: unknown; headers?: Record<string, string>; body?: string }): Promise<Reply>;
  close(): Promise<void>;
}

export const MASTER_KEY = randomBytes(32).toString('base64');

/**
 * A gateway over real HTTPS (development certificate) with the identity service on a fresh
 * database. `identity` merges into a default section (open registration, issuer = the gateway).
 */
export async function startIdentityGateway(options: {
  backend: 'sqlite' | 'postgres';
  identity?: Record<string, unknown>;
  routes?: Record<string, unknown>[];
  upstreams?: Record<string, unknown>;
  defaults?: Record<string, unknown>;
  /** Share a database with another gateway (its storage URL) instead of a fresh one. */
  storageUrl?: string;
  redis?: Record<string, unknown>;
  /** Merged into `server` (TLS stays on). */
  server?: Record<string, unknown>;
  /** The admin listener's settings (off unless given). */
  admin?: Record<string, unknown>;
  /** The `alerts` section. */
  alerts?: Record<string, unknown>;
}): Promise<IdentityGateway> {
  const storage = options.storageUrl !== undefined ? { url: options.storageUrl, drop: () => Promise.resolve() } : await freshStorage(options.backend);
  const gw = await startGateway({
    mode: 'development',
    server: { tls: 'auto', ...options.server },
    storage: { url: storage.url },
    identity: { issuer: 'https://localhost', registration: 'open', masterKey: MASTER_KEY, scopes: { user: ['notes:read', 'notes:write'] }, ...options.identity },
    upstreams: options.upstreams ?? {},
    routes: options.routes ?? [],
    ...(options.defaults !== undefined ? { defaults: options.defaults } : {}),
    ...(options.redis !== undefined ? { redis: options.redis } : {}),
    ...(options.admin !== undefined ? { admin: options.admin } : {}),
    ...(options.alerts !== undefined ? { alerts: options.alerts } : {}),
  });
  const ca = readFileSync(join(dirname(gw.configFile), 'data', 'tls', 'localhost.crt'), 'utf8');
  const url = gw.url;
  const call: IdentityGateway['call'] = (method, path, o = {}) => {
    const target = new URL(path, url);
    const headers: Record<string, string> = { ...o.headers };
    let body: string | undefined = o.body;
    if (o.json !== undefined) {
      body = JSON.stringify(o.json);
      headers['content-type'] ??= 'application/json';
    }
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
    return send(url, target.pathname + target.search, { method, headers, ca, ...(body !== undefined ? { body } : {}) });
  };
  return {
    gw,
    url,
    ca,
    storageUrl: storage.url,
    call,
    async close() {
      await gw.close();
      await storage.drop();
    },
  };
}

/** Asserts that no answer anywhere carries a password hash or a password field. */
export function assertNoSecrets(reply: Reply): void {
  if (/\$argon2/.test(reply.text) || /"password(Hash|_hash)?"\s*:/.test(reply.text)) throw new Error(`a response carries a password or hash: ${reply.text.slice(0, 200)}`);
}

/**
 * The usual setup: a recording upstream as `notes`, and a gateway with the identity service whose
 * `/api/notes/*` route takes this service's access tokens. `close()` stops both.
 */
export async function startNotesBehindIdentity(options: Omit<Parameters<typeof startIdentityGateway>[0], 'upstreams' | 'routes'>): Promise<{ id: IdentityGateway; upstream: TestUpstream; close(): Promise<void> }> {
  const upstream = await startUpstream();
  let id: IdentityGateway;
  try {
    id = await startIdentityGateway({
      ...options,
      upstreams: { notes: { targets: [{ url: upstream.url }] } },
      routes: [{ name: 'notes', match: { path: '/api/notes/*' }, upstream: 'notes', policies: { jwt: { identity: true } } }],
    });
  } catch (error) {
    await upstream.close();
    throw error;
  }
  return {
    id,
    upstream,
    async close() {
      await id.close();
      await upstream.close();
    },
  };
}

/**
 * Holds the next call of `target[method]` until `release()`: `inside` resolves once the call has
 * started. Later calls go straight through (the original is put back when the call starts).
 */
export function holdNextCall<T extends object, K extends keyof T>(target: T, method: K): { inside: Promise<void>; release: () => void } {
  const original = target[method] as unknown as (...args: unknown[]) => Promise<unknown>;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let entered!: () => void;
  const inside = new Promise<void>((r) => (entered = r));
  (target as Record<K, unknown>)[method] = async (...args: unknown[]) => {
    (target as Record<K, unknown>)[method] = original;
    entered();
    await gate;
    return original.apply(target, args);
  };
  return { inside, release };
}

/** The first admin, made as `rampart users create --admin` does, with its one-time password changed: an access token. */
export async function adminToken(id: IdentityGateway, email = 'boss@example.com', password = 'the chief passphrase 2'): Promise<string> {
  const boot = await id.gw.runtime.identity!.service.bootstrapAdmin(email);
  const change = (await id.call('POST', '/api/v1/auth/login', { json: { email, password: boot.oneTimePassword } })).json<{ passwordChangeToken: string }>();
  const done = await id.call('POST', '/api/v1/auth/password', { json: { passwordChangeToken: change.passwordChangeToken, newPassword: password } });
  if (done.status !== 200) throw new Error(`admin bootstrap failed: ${done.status} ${done.text}`);
  return done.json<{ access_token: string }>().access_token;
}

/** Registers (open registration) and logs in: the access token and the user's id. */
export async function userToken(id: IdentityGateway, email: string, password = 'a long enough passphrase 7'): Promise<{ token: string; id: string }> {
  await id.call('POST', '/api/v1/auth/register', { json: { email, password } });
  const login = await id.call('POST', '/api/v1/auth/login', { json: { email, password } });
  if (login.status !== 200) throw new Error(`login failed: ${login.status} ${login.text}`);
  const token = login.json<{ access_token: string }>().access_token;
  const me = (await id.call('GET', '/api/v1/users/me', { token })).json<{ id: string }>();
  return { token, id: me.id };
}

/** An answer without what differs per request (the request id in body and header, the date), to compare answers byte for byte. */
export function comparable(r: Reply): string {
  const body = r.json();
  delete body.requestId;
  const headers = { ...r.headers };
  delete headers['x-request-id'];
  delete headers.date;
  return JSON.stringify({ status: r.status, headers, body, length: r.text.length });
}
