import { watch, type FSWatcher } from 'node:fs';
import { Metrics } from '../observability/metrics.js';
import type { AddressInfo } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import { basename, dirname, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { DestinationStream } from 'pino';
import { loadConfigFile, type LoadedConfig } from '../config/load.js';
import { ConfigError, formatIssue } from '../config/errors.js';
import { parseDuration } from '../config/units.js';
import { closeLogger, createLogger, LogFileError, reopenLogger, type Logger } from '../observability/logger.js';
import { createEvents, type Events } from '../observability/events.js';
import { EventRing } from '../observability/event-ring.js';
import { Alerts } from '../observability/alerts.js';
import { createAdminApp } from '../admin/app.js';
import { buildPipeline, redisSettings, type Pipeline } from './pipeline.js';
import { startIdentity, type IdentityRuntime } from '../identity/index.js';
import { createGatewayApp, openHttp2Sessions } from './app.js';
import { loadTls, type TlsMaterial } from './tls.js';
import { Stores } from '../stores/stores.js';
import type { PipelineRef } from './plugin.js';

export interface StartOptions {
  configFile: string;
  env?: NodeJS.ProcessEnv;
  /** Where logs go instead of the config's destination (tests). */
  logStream?: DestinationStream;
  /**
   * This process is worker `id` of `rampart start --workers N`: its lines carry `worker` and go
   * to stdout (the primary writes them to the configured destination), and `/metrics` answers
   * with every worker's figures, gathered by `metrics` (the primary aggregates them).
   */
  worker?: { id: number; metrics: () => Promise<{ contentType: string; text: string }>; register?: (metrics: Metrics) => void };
}

export class ListenError extends Error {
  constructor(what: string, host: string, port: number, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException).code;
    const why = code === 'EADDRINUSE' ? 'address already in use' : code === 'EACCES' ? 'permission denied' : code === 'EADDRNOTAVAIL' ? 'address not available' : String((cause as Error).message);
    super(`cannot listen on ${host}:${port} (${what}): ${why}`, { cause });
    this.name = 'ListenError';
  }
}

export type ReloadResult = { ok: true; version: number } | { ok: false; error: Error };

/**
 * A running gateway: the main and admin listeners, the current pipeline, hot reload and draining
 * shutdown. Signals are wired by the CLI, not here, so tests and embedders decide.
 */
export class GatewayRuntime {
  readonly logger: Logger;
  readonly events: Events;
  readonly ref: PipelineRef;
  readonly app: FastifyInstance;
  /** The plain-HTTP listener next to the HTTPS one (`server.http`), which redirects. */
  readonly plain: FastifyInstance | undefined;
  readonly admin: FastifyInstance | undefined;
  readonly #configFile: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #live = new Set<Pipeline>();
  #watcher: FSWatcher | undefined;
  #reloading: Promise<ReloadResult> = Promise.resolve({ ok: true, version: 0 });
  #shutdown: Promise<void> | undefined;

  #tls: TlsMaterial | undefined;
  /** Rate-limit counters and the Redis connection: kept across reloads. */
  readonly stores: Stores;
  /** The identity service (database, keys, audit sink), when the config enables it: kept across reloads. */
  readonly identity: IdentityRuntime | undefined;
  readonly metrics: Metrics;
  /** The last security events, for the console and the admin API's live stream. */
  readonly ring: EventRing;
  /** Alert rules and their notifications: kept across reloads (`update` on each). */
  readonly alerts: Alerts;

  private constructor(init: {
    logger: Logger;
    events: Events;
    ref: PipelineRef;
    app: FastifyInstance;
    plain: FastifyInstance | undefined;
    admin: FastifyInstance | undefined;
    tls: TlsMaterial | undefined;
    stores: Stores;
    identity: IdentityRuntime | undefined;
    metrics: Metrics;
    ring: EventRing;
    alerts: Alerts;
    configFile: string;
    env: NodeJS.ProcessEnv;
  }) {
    this.logger = init.logger;
    this.events = init.events;
    this.ref = init.ref;
    this.app = init.app;
    this.plain = init.plain;
    this.admin = init.admin;
    this.#tls = init.tls;
    this.stores = init.stores;
    this.identity = init.identity;
    this.metrics = init.metrics;
    this.ring = init.ring;
    this.alerts = init.alerts;
    this.#configFile = init.configFile;
    this.#env = init.env;
    this.#live.add(init.ref.current);
  }

  /** Loads the config, builds everything and listens. Throws ConfigFileError, ConfigError or ListenError. */
  static async start(options: StartOptions): Promise<GatewayRuntime> {
    const env = options.env ?? process.env;
    const loaded = loadConfigFile(options.configFile, env);
    const config = loaded.config;
    const logger = openLogger(loaded, options.logStream, options.worker?.id);
    const events = createEvents(logger);
    const metrics = new Metrics();
    if (options.worker !== undefined) {
      metrics.aggregateWith(options.worker.metrics);
      options.worker.register?.(metrics);
    }
    metrics.watch(events);
    const ring = new EventRing(config.admin.events.ring);
    events.addSink(ring.sink);
    const tls = await loadTls(loaded);
    const stores = new Stores(logger);
    metrics.watchStore('redis', () => stores.redisUp());
    let pipeline: Pipeline;
    let identity: IdentityRuntime | undefined;
    try {
      // The identity service first (it migrates the database and loads the keys): the pipeline links to it.
      if (config.identity?.enabled === true) {
        identity = await startIdentity(loaded, { logger, events, stores, redis: config.redis === undefined ? undefined : redisSettings(config.redis) });
      }
      if (identity !== undefined) {
        metrics.watchStore('database', identity.databaseUp);
        metrics.watchAudit(identity.audit);
      }
      pipeline = buildPipeline(loaded, { logger, events, stores, identity, metrics });
    } catch (error) {
      await identity?.close();
      await stores.close();
      throw error;
    }
    // Redis (when a limit uses it) gets a moment to connect; if it does not, limits apply their
    // failure mode and the client keeps reconnecting.
    if (!(await stores.ready(2000))) logger.warn('Redis is not answering at start; rate limits apply their onStoreFailure mode until it does');
    const ref: PipelineRef = { current: pipeline, draining: false };
    const app = await createGatewayApp({ ref, logger, tls });
    const plain = config.server.http !== undefined ? await createGatewayApp({ ref, logger }) : undefined;
    const alerts = new Alerts(config, { events, metrics, logger });
    const admin = config.admin.enabled
      ? (await createAdminApp({ ref, metrics, events, ring, logger, stores, redis: config.redis === undefined ? undefined : redisSettings(config.redis), identity, tls, alerts }))
      : undefined;
    const runtime = new GatewayRuntime({ logger, events, ref, app, plain, admin, tls, stores, identity, metrics, ring, alerts, configFile: options.configFile, env });
    const opened: FastifyInstance[] = [];
    const listen = async (what: string, server: FastifyInstance, at: { host: string; port: number }) => {
      try {
        await server.listen({ host: at.host, port: at.port });
        opened.push(server);
      } catch (error) {
        for (const o of opened) await o.close();
        await alerts.close();
        await pipeline.close();
        await identity?.close();
        await stores.close();
        throw new ListenError(what, at.host, at.port, error);
      }
    };
    await listen('gateway', app, config.server.listen);
    if (tls !== undefined) ref.httpsPort = (app.server.address() as AddressInfo).port;
    if (plain !== undefined) await listen('plain HTTP', plain, config.server.http!.listen);
    if (admin !== undefined) await listen('admin', admin, config.admin.listen);
    if (config.mode === 'development') {
      logger.warn({ mode: 'development' }, 'DEVELOPMENT MODE: conveniences that are unsafe in production are allowed. Never run this config in production.');
    }
    if (tls?.dev !== undefined) {
      logger.warn(
        { certificate: tls.dev.certFile, fingerprintSha256: tls.dev.fingerprint, created: tls.dev.created },
        `DEVELOPMENT CERTIFICATE: HTTPS uses a self-signed certificate for localhost (${tls.dev.created ? 'created' : 'reused'}: ${tls.dev.certFile}, SHA-256 ${tls.dev.fingerprint}). Clients must be told to trust it (curl --cacert ${tls.dev.certFile}). Never use tls: auto in production.`,
      );
    }
    for (const warning of [...loaded.warnings.map(formatIssue), ...(tls?.warnings ?? [])]) logger.warn({ config: loaded.file }, `config warning: ${warning}`);
    if (config.watch) runtime.#watch();
    events.emit({
      type: 'sys_startup',
      level: 'INFO',
      description: `Rampart started: gateway on ${runtime.url}${runtime.plainUrl !== undefined ? `, plain HTTP on ${runtime.plainUrl}` : ''}${runtime.adminUrl !== undefined ? `, admin on ${runtime.adminUrl}` : ''}, ${pipeline.routes.length} route(s)`,
      data: { routes: pipeline.routes.length, configVersion: pipeline.version, mode: config.mode },
    });
    return runtime;
  }

  /** Reopens the log file (`log.destination`), for an external logrotate: the CLI calls it on SIGHUP. */
  reopenLogs(): void {
    reopenLogger(this.logger);
  }

  /** `https://host:port` (with `server.tls`) or `http://host:port` of the gateway listener. */
  get url(): string {
    return addressUrl(this.app, this.#tls !== undefined ? 'https' : 'http');
  }

  /** `http://host:port` of the plain-HTTP listener next to the HTTPS one (`server.http`). */
  get plainUrl(): string | undefined {
    return this.plain === undefined ? undefined : addressUrl(this.plain, 'http');
  }

  get adminUrl(): string | undefined {
    return this.admin === undefined ? undefined : addressUrl(this.admin, this.ref.current.loaded.config.admin.tls ? 'https' : 'http');
  }

  /**
   * Re-reads the config file and swaps in the new pipeline atomically. A bad config is logged and
   * rejected and the old one keeps serving; requests in flight finish on the one they started with.
   */
  reload(): Promise<ReloadResult> {
    this.#reloading = this.#reloading.then(() => this.#reload());
    return this.#reloading;
  }

  async #reload(): Promise<ReloadResult> {
    if (this.ref.draining) return { ok: false, error: new Error('shutting down') };
    const old = this.ref.current;
    let next: Pipeline;
    let tls: TlsMaterial | undefined;
    try {
      const loaded = loadConfigFile(this.#configFile, this.#env);
      tls = await loadTls(loaded);
      next = buildPipeline(loaded, { logger: this.logger, events: this.events, stores: this.stores, identity: this.identity, metrics: this.metrics });
    } catch (error) {
      const issues = error instanceof ConfigError ? error.issues.map(formatIssue) : [(error as Error).message];
      this.logger.error({ errors: issues }, 'config reload rejected; the previous config keeps serving');
      this.events.emit({ type: 'sys_config_reload_fail', level: 'WARN', description: `config reload rejected: ${issues.length} error(s)`, data: { errors: issues.length } });
      return { ok: false, error: error as Error };
    }
    warnRestartOnly(old.loaded, next.loaded, this.logger);
    // A renewed certificate (or new TLS settings) applies to new connections from now on.
    if (this.#tls !== undefined && tls !== undefined) {
      (this.app.server as unknown as TlsServer).setSecureContext(tls.options);
      this.#tls = tls;
      for (const warning of tls.warnings) this.logger.warn(`config warning: ${warning}`);
    }
    for (const warning of next.loaded.warnings) this.logger.warn(`config warning: ${formatIssue(warning)}`);
    this.ref.current = next;
    this.#live.add(next);
    this.alerts.update(next.loaded.config);
    const drain = parseDuration(old.loaded.config.server.drainTimeout);
    void old.retire(drain).finally(() => this.#live.delete(old));
    this.events.emit({ type: 'sys_config_reload', level: 'INFO', description: `config reloaded: version ${next.version}, ${next.routes.length} route(s)`, data: { configVersion: next.version, routes: next.routes.length } });
    return { ok: true, version: next.version };
  }

  /**
   * Stops accepting, lets requests in flight finish (up to `server.drainTimeout`), closes pools and
   * listeners. New requests on open connections get 503 RMP_SHUTTING_DOWN meanwhile.
   */
  shutdown(reason = 'signal'): Promise<void> {
    this.#shutdown ??= this.#doShutdown(reason);
    return this.#shutdown;
  }

  async #doShutdown(reason: string): Promise<void> {
    this.ref.draining = true;
    this.#watcher?.close();
    const deadline = Date.now() + parseDuration(this.ref.current.loaded.config.server.drainTimeout);
    this.events.emit({ type: 'sys_shutdown', level: 'INFO', description: `Rampart shutting down (${reason}); draining requests in flight` });
    const apps = this.plain === undefined ? [this.app] : [this.app, this.plain];
    // HTTP/2 servers have no closeIdleConnections(): Fastify closes their sessions gracefully.
    const servers = apps.map((a) => a.server as Partial<Pick<typeof a.server, 'closeIdleConnections' | 'closeAllConnections'>>);
    const sessions = apps.flatMap((a) => [...(openHttp2Sessions(a) ?? [])]);
    const closed = Promise.all(apps.map((a) => a.close()));
    // HTTP/2: GOAWAY now (streams in flight finish, no new ones start), destroyed at the deadline.
    for (const session of sessions) session.close();
    // Connections that become idle while draining are closed as soon as they do.
    while (this.#inflight() > 0 && Date.now() < deadline) {
      for (const server of servers) server.closeIdleConnections?.();
      await delay(25);
    }
    const unfinished = this.#inflight();
    if (unfinished > 0) this.logger.warn({ unfinished }, 'drain deadline passed; closing connections with requests in flight');
    for (const server of servers) server.closeAllConnections?.();
    for (const session of sessions) if (!session.destroyed) session.destroy();
    await closed;
    await Promise.allSettled([...this.#live].map((p) => p.close()));
    await this.admin?.close();
    await this.alerts.close();
    await this.identity?.close();
    await this.stores.close();
    this.logger.info({ type: 'event', event: 'sys_shutdown' }, 'Rampart stopped');
    await closeLogger(this.logger);
  }

  #inflight(): number {
    let n = 0;
    for (const p of this.#live) n += p.inflight;
    return n;
  }

  #watch(): void {
    const file = resolve(this.#configFile);
    const name = basename(file);
    let timer: NodeJS.Timeout | undefined;
    // Watch the directory: editors replace files by renaming, which a file watch loses.
    this.#watcher = watch(dirname(file), (_event, changed) => {
      if (changed !== null && changed !== name) return;
      clearTimeout(timer);
      timer = setTimeout(() => void this.reload(), 100);
    });
    this.#watcher.unref();
  }
}

/** The logger of `log`; a log file that cannot be opened is a config error pointing at `log.destination`. */
function openLogger(loaded: LoadedConfig, stream: DestinationStream | undefined, worker: number | undefined): Logger {
  // A worker's lines go to the primary (its stdout), which owns the destination and its rotation.
  const log = worker === undefined ? loaded.config.log : { ...loaded.config.log, destination: 'stdout', rotate: undefined, base: { worker } };
  try {
    return createLogger({ ...log, dir: loaded.dir }, stream);
  } catch (error) {
    if (error instanceof LogFileError) throw new ConfigError([loaded.issue(['log', 'destination'], error.message)]);
    throw error;
  }
}

function warnRestartOnly(old: LoadedConfig, next: LoadedConfig, logger: Logger): void {
  const a = old.config;
  const b = next.config;
  const changed: string[] = [];
  if (JSON.stringify(a.server.listen) !== JSON.stringify(b.server.listen)) changed.push('server.listen');
  if ((a.server.tls === undefined) !== (b.server.tls === undefined)) changed.push('server.tls (on/off)');
  const http2 = (c: typeof a) => typeof c.server.tls === 'object' && c.server.tls.http2 === true;
  if (http2(a) !== http2(b)) changed.push('server.tls.http2');
  if (JSON.stringify(a.server.http) !== JSON.stringify(b.server.http)) changed.push('server.http');
  if (JSON.stringify(a.server.timeouts) !== JSON.stringify(b.server.timeouts)) changed.push('server.timeouts');
  if (JSON.stringify(a.server.overload) !== JSON.stringify(b.server.overload)) changed.push('server.overload');
  if (JSON.stringify(a.admin) !== JSON.stringify(b.admin)) changed.push('admin');
  if (JSON.stringify(a.log) !== JSON.stringify(b.log)) changed.push('log');
  if (a.watch !== b.watch) changed.push('watch');
  if (JSON.stringify(a.identity) !== JSON.stringify(b.identity)) changed.push('identity');
  if (JSON.stringify(a.storage) !== JSON.stringify(b.storage)) changed.push('storage');
  if (changed.length > 0) logger.warn({ keys: changed }, `these settings only change on restart: ${changed.join(', ')}`);
}

function addressUrl(app: FastifyInstance, scheme: 'http' | 'https'): string {
  const address = app.server.address();
  if (address === null || typeof address === 'string') return String(address);
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${scheme}://${host}:${address.port}`;
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
