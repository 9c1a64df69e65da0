import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Agent, request, type Dispatcher } from 'undici';
import type { LoadedConfig } from '../config/load.js';
import type { ApiKeyDto } from '../identity/api-keys.js';
import type { ClientDto, ClientInput } from '../identity/clients.js';
import type { IdentityRuntime } from '../identity/index.js';
import type { KeyInfo } from '../identity/keys.js';
import type { ClientInfo, UserDto } from '../identity/service.js';

/**
 * What the management commands (`users`, `apikeys`, `clients`, `keys`) do, over one of two
 * backends: the admin API of a running gateway (the default: the gateway's own identity service
 * and revocation store make the change), or the database directly (`--offline`: the bootstrap
 * path, before any gateway runs). The commands print the same lines either way.
 */
export interface Management {
  readonly kind: 'api' | 'offline';
  createAdmin(email: string): Promise<{ id: string; email: string; oneTimePassword: string }>;
  listSigningKeys(): Promise<KeyInfo[]>;
  rotateSigningKey(): Promise<{ kid: string; activeFrom: string }>;
  /** False when no published key has this id. */
  revokeSigningKey(kid: string): Promise<boolean>;
  userIdByEmail(email: string): Promise<string | undefined>;
  createApiKey(input: { ownerId: string; name: string; scopes: string[] | undefined; expires: string | undefined }): Promise<{ key: ApiKeyDto; secret: string }>;
  listApiKeys(query: { userId: string | undefined; cursor: string | undefined }): Promise<{ items: ApiKeyDto[]; nextCursor: string | null }>;
  getApiKey(id: string): Promise<ApiKeyDto | undefined>;
  revokeApiKey(id: string): Promise<void>;
  createClient(input: Omit<ClientInput, 'tokenTtlS'> & { tokenTtl: string | undefined }): Promise<{ client: ClientDto; secret?: string | undefined }>;
  listClients(cursor: string | undefined): Promise<{ items: ClientDto[]; nextCursor: string | null }>;
  /** Undefined when there is no such client. */
  rotateClientSecret(id: string, overlap: string | undefined): Promise<{ secret: string; previousExpireAt: string } | undefined>;
  deleteClient(id: string): Promise<boolean>;
}

/** A one-line failure of a command (printed as `rampart: <message>`, exit 1). */
export class CommandError extends Error {}

// ── offline: straight to the database ─────────────────────────────────────────────────────────

/** Who the CLI is in the audit trail. */
export const CLI_CLIENT: ClientInfo = { ip: '', userAgent: 'rampart-cli', requestId: 'cli' };

export function offlineManagement(identity: IdentityRuntime, parseDuration: (text: string) => number): Management {
  const s = identity.service;
  return {
    kind: 'offline',
    async createAdmin(email) {
      const created = await s.bootstrapAdmin(email);
      return { id: created.id, email: email.trim().toLowerCase(), oneTimePassword: created.oneTimePassword };
    },
    listSigningKeys: () => Promise.resolve(s.keys.list()),
    rotateSigningKey: () => s.keys.rotate(),
    revokeSigningKey: (kid) => s.keys.revoke(kid),
    userIdByEmail: (email) => s.userIdByEmail(email),
    createApiKey: (input) =>
      s.apiKeys.create({ id: 'cli', roles: undefined }, { ownerId: input.ownerId, name: input.name, scopes: input.scopes, expiresInMs: input.expires === undefined ? undefined : parseDuration(input.expires) }, CLI_CLIENT),
    listApiKeys: (query) => s.apiKeys.list({ userId: query.userId, limit: 100, cursor: query.cursor }),
    getApiKey: (id) => s.apiKeys.get(id),
    async revokeApiKey(id) {
      await s.apiKeys.revoke('cli', id, CLI_CLIENT, 'revoked_by_operator');
    },
    createClient: ({ tokenTtl, ...input }) => s.clients.create('cli', undefined, { ...input, tokenTtlS: tokenTtl === undefined ? undefined : Math.floor(parseDuration(tokenTtl) / 1000) }, CLI_CLIENT),
    listClients: (after) => s.clients.list({ limit: 100, after }),
    rotateClientSecret: (id, overlap) => s.clients.rotateSecret('cli', undefined, id, overlap === undefined ? s.clients.settings.defaultOverlapMs : parseDuration(overlap), CLI_CLIENT),
    deleteClient: (id) => s.clients.delete('cli', id, CLI_CLIENT),
  };
}

// ── the admin API of a running gateway ────────────────────────────────────────────────────────

export interface AdminTarget {
  /** `http(s)://host:port` of the admin listener. */
  url: string;
  /** The admin token (or an identity admin's access token). */
  token: string;
  /** PEM of the certificate to trust (the development certificate), for https. */
  ca: string | undefined;
}

export interface TargetOptions {
  adminUrl?: string | undefined;
  tokenFile?: string | undefined;
  ca?: string | undefined;
}

/**
 * Where the admin API is and how to prove who we are. The address: `--admin-url`, else
 * `RAMPART_ADMIN_URL`, else the config's `admin.listen` (https with `admin.tls`). The
 * certificate to trust over https: `--ca`, else with `server.tls: auto` the development
 * certificate in `<dataDir>/tls/`, else the system's roots. The credentials: `--token-file`,
 * else `RAMPART_ADMIN_TOKEN` — never an argument, which every user of the machine sees in `ps`.
 */
export function resolveTarget(opts: TargetOptions, loaded: LoadedConfig | undefined, env: NodeJS.ProcessEnv): AdminTarget {
  let url = opts.adminUrl ?? (env.RAMPART_ADMIN_URL === '' ? undefined : env.RAMPART_ADMIN_URL);
  if (url === undefined) {
    if (loaded === undefined) throw new CommandError('no admin API address: give --admin-url or RAMPART_ADMIN_URL (or use --offline)');
    const admin = loaded.config.admin;
    if (!admin.enabled) throw new CommandError(`${loaded.file} has the admin listener off (admin.enabled: false): give --admin-url, or use --offline to work on the database directly`);
    url = `${admin.tls ? 'https' : 'http'}://${connectHost(admin.listen.host)}:${admin.listen.port}`;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CommandError(`the admin URL '${url}' is not a URL (e.g. http://127.0.0.1:9901)`);
  }
  if ((parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.username !== '' || parsed.password !== '' || parsed.search !== '' || parsed.hash !== '') {
    throw new CommandError(`the admin URL '${url}' must be http(s)://host:port, with no credentials, query or fragment`);
  }
  let ca: string | undefined;
  if (parsed.protocol === 'https:') {
    const file = opts.ca ?? (loaded?.config.server.tls === 'auto' ? resolve(loaded.dir, loaded.config.dataDir, 'tls', 'localhost.crt') : undefined);
    if (file !== undefined) ca = readText(file, opts.ca !== undefined ? '--ca' : 'the development certificate');
  }
  let token: string;
  if (opts.tokenFile !== undefined) token = readText(opts.tokenFile, '--token-file').trim();
  else token = env.RAMPART_ADMIN_TOKEN ?? '';
  if (token === '') {
    throw new CommandError(
      opts.tokenFile !== undefined
        ? `the token file '${opts.tokenFile}' is empty`
        : 'no admin credentials: set RAMPART_ADMIN_TOKEN or give --token-file FILE (the admin token, or an identity admin\'s access token); or use --offline to work on the database directly',
    );
  }
  if (!/^[A-Za-z0-9._~+/=-]+$/.test(token)) throw new CommandError('the admin token has characters a bearer token cannot hold (RFC 6750 b64token)');
  return { url: parsed.origin, token, ca };
}

/** A wildcard listen address is reached on loopback. */
function connectHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CommandError(`cannot read ${what} '${file}': ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (error as Error).message}`);
  }
}

/** Whether a config file exists to read the admin address or certificate from. */
export function configExists(file: string): boolean {
  return existsSync(file);
}

interface Problem {
  status?: number;
  code?: string;
  title?: string;
  detail?: string;
  errors?: { pointer?: string; detail?: string }[];
}

/** Network errors that mean "nothing answers there" (as opposed to an answer we did not like). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EPIPE', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

/** The admin API over HTTP (undici), one connection kept for the command's calls. */
export class AdminApi {
  readonly #target: AdminTarget;
  readonly #dispatcher: Agent;
  readonly #hint: string;

  constructor(target: AdminTarget, hint: string) {
    this.#target = target;
    this.#hint = hint;
    this.#dispatcher = new Agent({
      connect: { timeout: 5000, ...(target.ca !== undefined ? { ca: target.ca } : {}) },
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
      connections: 1,
    });
  }

  /** The answer's JSON body (undefined for 204), or a CommandError with the problem's detail. */
  async call<T>(method: Dispatcher.HttpMethod, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#target.token}`, accept: 'application/json', 'user-agent': 'rampart-cli' };
    let payload: string | undefined;
    if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    let res: Dispatcher.ResponseData;
    try {
      res = await request(this.#target.url + path, { method, headers, body: payload, dispatcher: this.#dispatcher });
    } catch (error) {
      throw this.#networkError(error);
    }
    const text = await res.body.text();
    if (res.statusCode === 204) return undefined as T;
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new CommandError(`the admin API at ${this.#target.url} answered ${res.statusCode} with something that is not JSON: is it a Rampart admin listener?`);
    }
    if (res.statusCode >= 200 && res.statusCode < 300) return json as T;
    throw problemError(res.statusCode, (json ?? {}) as Problem, this.#target.url);
  }

  #networkError(error: unknown): CommandError {
    const e = error as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
    const code = e.code ?? e.cause?.code ?? '';
    const why = e.cause?.message ?? e.message;
    if (UNREACHABLE.has(code)) {
      return new CommandError(`cannot reach the admin API at ${this.#target.url} (${code}): start the gateway (${this.#hint}), or use --offline to work on the database directly`);
    }
    if (/CERT|SSL|TLS|EPROTO/i.test(code) || /certificate/i.test(why)) {
      return new CommandError(`the admin API at ${this.#target.url}: TLS failed (${code || why}): give the certificate to trust with --ca FILE`);
    }
    return new CommandError(`the admin API at ${this.#target.url} failed: ${why}`);
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }
}

function problemError(status: number, problem: Problem, url: string): CommandError {
  if (status === 404 && problem.code === 'RMP_ADMIN_NOT_FOUND') return new NotFound(problem.detail ?? 'not found');
  const detail = problem.detail ?? problem.title ?? `HTTP ${status}`;
  const errors = Array.isArray(problem.errors) ? problem.errors.map((e) => `${e.pointer ?? ''}: ${e.detail ?? 'is not valid'}`) : [];
  const text = errors.length > 0 ? `${detail} ${errors.join('; ')}` : detail;
  // Refusals of the credentials themselves say which ones were sent.
  if ((status === 401 || status === 403) && typeof problem.code === 'string' && problem.code.startsWith('RMP_ADMIN_')) {
    return new CommandError(`the admin API at ${url} refused the credentials (${status} ${problem.code}): ${text}`);
  }
  return new CommandError(text);
}

const q = encodeURIComponent;

export function apiManagement(api: AdminApi): Management {
  return {
    kind: 'api',
    async createAdmin(email) {
      const created = await api.call<{ user: UserDto; oneTimePassword: string }>('POST', '/api/users', { email, admin: true });
      return { id: created.user.id, email: created.user.email, oneTimePassword: created.oneTimePassword };
    },
    listSigningKeys: async () => (await api.call<{ items: KeyInfo[] }>('GET', '/api/keys')).items,
    rotateSigningKey: () => api.call('POST', '/api/keys/rotate'),
    revokeSigningKey: (kid) => exists(api.call('POST', `/api/keys/${q(kid)}/revoke`)),
    async userIdByEmail(email) {
      const wanted = email.trim().toLowerCase();
      // The API's e-mail filter matches a part of the address: the exact one is looked for in the pages.
      let cursor: string | undefined;
      do {
        const page = await api.call<{ items: UserDto[]; nextCursor: string | null }>('GET', `/api/users?email=${q(wanted)}&limit=200${cursor === undefined ? '' : `&cursor=${q(cursor)}`}`);
        const user = page.items.find((u) => u.email === wanted);
        if (user !== undefined) return user.id;
        cursor = page.nextCursor ?? undefined;
      } while (cursor !== undefined);
      return undefined;
    },
    createApiKey: (input) => api.call('POST', '/api/apikeys', { ownerId: input.ownerId, name: input.name, ...(input.scopes !== undefined ? { scopes: input.scopes } : {}), ...(input.expires !== undefined ? { expiresIn: input.expires } : {}) }),
    listApiKeys: (query) => api.call('GET', `/api/apikeys?limit=100${query.userId === undefined ? '' : `&userId=${q(query.userId)}`}${query.cursor === undefined ? '' : `&cursor=${q(query.cursor)}`}`),
    getApiKey: (id) => found(api.call<ApiKeyDto>('GET', `/api/apikeys/${q(id)}`)),
    async revokeApiKey(id) {
      await api.call('DELETE', `/api/apikeys/${q(id)}`);
    },
    createClient: ({ tokenTtl, ...input }) =>
      api.call('POST', '/api/clients', {
        name: input.name,
        scopes: input.scopes,
        ...(input.id !== undefined ? { id: input.id } : {}),
        ...(input.authMethod !== undefined ? { authMethod: input.authMethod } : {}),
        ...(input.jwks !== undefined ? { jwks: input.jwks } : {}),
        ...(input.introspection === true ? { introspection: true } : {}),
        ...(tokenTtl !== undefined ? { tokenTtl } : {}),
      }),
    listClients: (cursor) => api.call('GET', `/api/clients?limit=100${cursor === undefined ? '' : `&cursor=${q(cursor)}`}`),
    rotateClientSecret: (id, overlap) => found(api.call('POST', `/api/clients/${q(id)}/rotate-secret`, overlap === undefined ? {} : { overlap })),
    deleteClient: (id) => exists(api.call('DELETE', `/api/clients/${q(id)}`)),
  };
}

/** A 404 of the admin API (RMP_ADMIN_NOT_FOUND) as undefined; other failures stay failures. */
async function found<T>(answer: Promise<T>): Promise<T | undefined> {
  try {
    return await answer;
  } catch (error) {
    if (error instanceof NotFound) return undefined;
    throw error;
  }
}

/** Whether the change was made: false on a 404 of the admin API. */
async function exists(answer: Promise<unknown>): Promise<boolean> {
  return (await found(answer.then(() => true))) === true;
}

/** A 404 RMP_ADMIN_NOT_FOUND: "no such …", which each command words itself. */
class NotFound extends CommandError {}
