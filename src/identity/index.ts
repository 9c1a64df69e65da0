import { resolve } from 'node:path';
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.js';
import { parseDuration } from '../config/units.js';
import type { Events } from '../observability/events.js';
import { AuditSink } from '../observability/audit-sink.js';
import { createHealthProbe } from '../observability/health-probe.js';
import { sql } from 'kysely';
import type { IdentityLink } from '../policies/define.js';
import { createLimiter } from '../ratelimit/limiter.js';
import { openStorage, type Storage } from '../storage/database.js';
import { migrateToLatest } from '../storage/migrate.js';
import type { RedisSettings, Stores } from '../stores/stores.js';
import { SigningKeys } from './keys.js';
import { loadMasterKey, type MasterKey } from './master-key.js';
import { Mfa } from './mfa.js';
import { PasswordHasher } from './passwords.js';
import { SecretKeys } from './secret-keys.js';
import type { ApiKeySettings } from './api-keys.js';
import type { IdentityConfig } from './schema.js';
import { IdentityService } from './service.js';
import { AccessTokens, TokenHasher } from './tokens.js';

/** The running identity service and what the gateway links to it; closed at shutdown. */
export interface IdentityRuntime {
  readonly service: IdentityService;
  readonly link: IdentityLink;
  readonly storage: Storage;
  readonly audit: AuditSink;
  /** The master key (and the previous ones being rotated away from). */
  readonly master: MasterKey;
  /** The settings it started with (identity changes take effect on restart; reloads keep these). */
  readonly config: IdentityConfig;
  /** Whether the database answered its last `select 1` (every 5 s): `rampart_store_up{store="database"}`. */
  databaseUp(): boolean;
  close(): Promise<void>;
}

/** The identity service could not start (database unreachable, wrong master key, …): a one-line reason. */
export class IdentityStartError extends Error {
  constructor(message: string, cause: unknown) {
    super(`identity service: ${message}`, { cause });
    this.name = 'IdentityStartError';
  }
}

/** The API-key settings (their bounds are checked at config load). */
function apiKeySettings(identity: IdentityConfig): ApiKeySettings {
  const k = identity.apiKeys;
  return { env: k.environment, defaultTtlMs: parseDuration(k.defaultTtl), maxTtlMs: parseDuration(k.maxTtl), maxPerUser: k.maxPerUser, cacheTtlMs: parseDuration(k.cacheTtl) };
}

/** Access tokens live at most this long (the revocation replay and key retention rely on it). */
export const MAX_ACCESS_TTL_MS = 3_600_000;

/** The issuer, audience and algorithms the jwt policy checks, from config alone. */
export function identityLink(config: IdentityConfig, running?: Pick<IdentityRuntime, 'service'>): IdentityLink {
  return {
    issuer: config.issuer,
    audience: config.audience ?? [config.issuer],
    algorithms: [config.tokens.algorithm],
    keys: running?.service.keys,
    revocation: running?.service.revocation,
    apiKeys: running?.service.apiKeys.source,
  };
}

/**
 * Opens the database (migrating it), the master key and the signing keys, replays revocations,
 * and starts the timers: key refresh/rotation, the sweep of expired rows, audit retention.
 */
export async function startIdentity(loaded: LoadedConfig, deps: { logger: Logger; events: Events; stores: Stores; redis: RedisSettings | undefined }): Promise<IdentityRuntime> {
  const config = loaded.config;
  const identity = config.identity!;
  const dataDir = resolve(loaded.dir, config.dataDir);
  const master = loadMasterKey({ configured: identity.masterKey, previous: identity.previousMasterKeys, mode: config.mode, dataDir });
  if (master.file !== undefined) {
    deps.logger.warn(
      { masterKeyFile: master.file, created: master.generated },
      `DEVELOPMENT MASTER KEY: private signing keys are encrypted under a key kept next to them (${master.file}). Set identity.masterKey (\${RAMPART_MASTER_KEY} or \${file:…}) in production.`,
    );
  }
  const accessTtlMs = parseDuration(identity.tokens.accessTtl);
  // Client credentials tokens live at most this long (their default, or less per client).
  const clientTtlMs = identity.clients.tokenTtl === undefined ? accessTtlMs : parseDuration(identity.clients.tokenTtl);
  if (accessTtlMs > MAX_ACCESS_TTL_MS || accessTtlMs < 60_000) throw new Error('identity.tokens.accessTtl must be between 1m and 1h');
  const storage = openStorage(config.storage.url, loaded.dir);
  let removeSink: (() => void) | undefined;
  try {
    const { applied } = await migrateToLatest(storage.db);
    if (applied.length > 0) deps.logger.info({ applied }, `database migrated (${storage.dialect})`);
    const secretKeys = await SecretKeys.open(storage.db, master.key);
    const audit = new AuditSink(storage.db, deps.logger, storage.dialect);
    removeSink = deps.events.addSink(audit.sink);
    const keys = new SigningKeys(storage.db, master.key, identity.tokens.algorithm, {
      rotateEveryMs: parseDuration(identity.keys.rotateEvery),
      jwksMaxAgeMs: parseDuration(identity.keys.jwksMaxAge),
      // Every token a retired key signed has expired by then (plus the largest clock skew accepted).
      retainMs: Math.max(accessTtlMs, clientTtlMs) + 300_000,
    }, (change) => {
      const what = { created: 'signing key created', activated: 'signing key now signs on this node', revoked: 'signing key revoked: its tokens are refused' }[change.kind];
      deps.events.emit({ type: `sys_key_${change.kind}`, level: change.kind === 'revoked' ? 'CRITICAL' : 'INFO', description: `${what} (${change.kid})`, actor: 'system', subject: change.kid, data: { activeFrom: change.activeFrom } });
    });
    await keys.ensure();
    const limit = (name: string, l: { limit: number; window: string }) =>
      createLimiter({ name: `identity-${name}`, algorithm: 'gcra', limit: l.limit, window: l.window, store: 'auto', onStoreFailure: 'open' }, { stores: deps.stores, redis: deps.redis, logger: deps.logger });
    const hasher = new TokenHasher(secretKeys);
    const service = new IdentityService({
      db: storage.db,
      keys,
      tokens: new AccessTokens(keys, { issuer: identity.issuer, audience: identity.audience ?? [identity.issuer], clientId: identity.clientId, ttlMs: accessTtlMs }),
      hasher,
      passwords: new PasswordHasher(identity.passwords.argon2, { concurrency: identity.passwords.maxConcurrentHashes }),
      revocation: deps.stores.revocation(deps.redis),
      events: deps.events,
      audit,
      secrets: secretKeys,
      apiKeys: apiKeySettings(identity),
      clients: {
        env: identity.apiKeys.environment,
        firstPartyId: identity.clientId,
        defaultTokenTtlS: Math.floor(clientTtlMs / 1000),
        // A retired signing key stays published as long as its longest token lives: no client token may outlive that.
        maxTokenTtlS: Math.floor(clientTtlMs / 1000),
        defaultOverlapMs: parseDuration(identity.clients.secretOverlap),
      },
      mfa: new Mfa({
        db: storage.db,
        master: master.key,
        hasher,
        keys,
        tokenIssuer: identity.issuer,
        events: deps.events,
        settings: {
          issuer: identity.mfa.issuer,
          requireForRoles: identity.mfa.requireForRoles,
          lockout: { threshold: identity.mfa.lockout.threshold, baseMs: parseDuration(identity.mfa.lockout.baseDelay), maxMs: parseDuration(identity.mfa.lockout.maxDelay), permanentAfter: identity.mfa.lockout.permanentAfter },
        },
      }),
      limits: {
        login: limit('login', identity.limits.login),
        register: limit('register', identity.limits.register),
        refresh: limit('refresh', identity.limits.refresh),
        clientAuth: limit('client-auth', identity.limits.clientAuth),
        clientAuthIp: limit('client-auth-ip', identity.limits.clientAuthIp),
      },
      settings: {
        registration: identity.registration,
        minPasswordLength: identity.passwords.minLength,
        scopes: identity.scopes,
        refreshIdleMs: parseDuration(identity.tokens.refreshIdleTtl),
        refreshAbsoluteMs: parseDuration(identity.tokens.refreshAbsoluteTtl),
        reuseGraceMs: parseDuration(identity.tokens.reuseGrace),
        lockout: {
          threshold: identity.lockout.threshold,
          baseMs: parseDuration(identity.lockout.baseDelay),
          maxMs: parseDuration(identity.lockout.maxDelay),
          permanentAfter: identity.lockout.permanentAfter,
        },
      },
    });
    await service.replayRevocations();
    await service.apiKeys.replayRevocations();
    await service.clients.syncCutOffs();
    const timers: NodeJS.Timeout[] = [];
    const every = (ms: number, what: string, work: () => Promise<void>) => {
      let running = false;
      const timer = setInterval(() => {
        if (running) return;
        running = true;
        work()
          .catch((error: unknown) => deps.logger.warn({ err: (error as Error).message }, `identity: ${what} failed; will retry`))
          .finally(() => (running = false));
      }, ms);
      timer.unref();
      timers.push(timer);
    };
    // Picks up rotations and revocations from other nodes or the CLI, and promotes the next key on time.
    every(parseDuration(identity.keys.refresh), 'key refresh', () => keys.ensure());
    // Clients cut off by another node or the CLI (without Redis, this is how they reach this one).
    every(parseDuration(identity.keys.refresh), 'client cut-off sync', () => service.clients.syncCutOffs());
    every(600_000, 'sweep', async () => {
      await service.sweep();
      await service.apiKeys.sweep();
      await service.clients.sweep();
    });
    every(60_000, 'API key use', () => service.apiKeys.flushUse());
    const retention = parseDuration(identity.audit.retention);
    const ipRetention = parseDuration(identity.audit.ipRetention);
    every(3_600_000, 'audit retention', () => audit.applyRetention(retention, ipRetention));
    const probe = createHealthProbe(() => sql`select 1`.execute(storage.db), 5000);
    const runtime: IdentityRuntime = {
      service,
      storage,
      audit,
      master: master.key,
      config: identity,
      link: identityLink(identity, { service }),
      databaseUp: probe.up,
      async close() {
        for (const t of timers) clearInterval(t);
        probe.stop();
        await service.apiKeys.flushUse().catch((error: unknown) => deps.logger.warn({ err: (error as Error).message }, 'identity: API key use not recorded'));
        removeSink?.();
        await audit.close();
        await storage.close();
      },
    };
    return runtime;
  } catch (error) {
    removeSink?.();
    await storage.close();
    const message = (error as Error).message;
    if (/unable to authenticate data|not a v1 ciphertext|ciphertext too short/.test(message)) {
      throw new IdentityStartError('the keys in the database were encrypted under another master key (identity.masterKey, or data/master.key in development)', error);
    }
    throw new IdentityStartError(`cannot open ${storage.dialect === 'sqlite' ? 'the SQLite database' : 'PostgreSQL'} (storage.url): ${message}`, error);
  }
}
