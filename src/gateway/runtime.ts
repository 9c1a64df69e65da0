import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { DestinationStream } from 'pino';
import { loadConfigFile, type LoadedConfig } from '../config/load.js';
import { ConfigError, formatIssue } from '../config/errors.js';
import { parseDuration } from '../config/units.js';
import { createLogger, flushLogger, type Logger } from '../observability/logger.js';
import { createEvents, type Events } from '../observability/events.js';
import { createAdminApp } from '../admin/app.js';
import { buildPipeline, type Pipeline } from './pipeline.js';
import { createGatewayApp } from './app.js';
import type { PipelineRef } from './plugin.js';

export interface StartOptions {
  configFile: string;
  env?: NodeJS.ProcessEnv;
  /** Where logs go instead of the config's destination (tests). */
  logStream?: DestinationStream;
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
  readonly admin: FastifyInstance | undefined;
  readonly #configFile: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #live = new Set<Pipeline>();
  #watcher: FSWatcher | undefined;
  #reloading: Promise<ReloadResult> = Promise.resolve({ ok: true, version: 0 });
  #shutdown: Promise<void> | undefined;

  private constructor(init: { logger: Logger; events: Events; ref: PipelineRef; app: FastifyInstance; admin: FastifyInstance | undefined; configFile: string; env: NodeJS.ProcessEnv }) {
    this.logger = init.logger;
    this.events = init.events;
    this.ref = init.ref;
    this.app = init.app;
    this.admin = init.admin;
    this.#configFile = init.configFile;
    this.#env = init.env;
    this.#live.add(init.ref.current);
  }

  /** Loads the config, builds everything and listens. Throws ConfigFileError, ConfigError or ListenError. */
  static async start(options: StartOptions): Promise<GatewayRuntime> {
    const env = options.env ?? process.env;
    const loaded = loadConfigFile(options.configFile, env);
    const config = loaded.config;
    const logger = createLogger({ ...config.log, dir: loaded.dir }, options.logStream);
    const events = createEvents(logger);
    const pipeline = buildPipeline(loaded, { logger, events });
    const ref: PipelineRef = { current: pipeline, draining: false };
    const app = await createGatewayApp({ ref, logger });
    const admin = config.admin.enabled ? await createAdminApp(ref) : undefined;
    const runtime = new GatewayRuntime({ logger, events, ref, app, admin, configFile: options.configFile, env });
    const { host, port } = config.server.listen;
    try {
      await app.listen({ host, port });
    } catch (error) {
      await pipeline.close();
      throw new ListenError('gateway', host, port, error);
    }
    if (admin !== undefined) {
      const a = config.admin.listen;
      try {
        await admin.listen({ host: a.host, port: a.port });
      } catch (error) {
        await app.close();
        await pipeline.close();
        throw new ListenError('admin', a.host, a.port, error);
      }
    }
    if (config.mode === 'development') {
      logger.warn({ mode: 'development' }, 'DEVELOPMENT MODE: conveniences that are unsafe in production are allowed. Never run this config in production.');
    }
    if (config.watch) runtime.#watch();
    events.emit({
      type: 'sys_startup',
      level: 'INFO',
      description: `Rampart started: gateway on ${runtime.url}${runtime.adminUrl !== undefined ? `, admin on ${runtime.adminUrl}` : ''}, ${pipeline.routes.length} route(s)`,
      data: { routes: pipeline.routes.length, configVersion: pipeline.version, mode: config.mode },
    });
    return runtime;
  }

  /** `http://host:port` of the gateway listener. */
  get url(): string {
    return addressUrl(this.app);
  }

  get adminUrl(): string | undefined {
    return this.admin === undefined ? undefined : addressUrl(this.admin);
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
    try {
      const loaded = loadConfigFile(this.#configFile, this.#env);
      next = buildPipeline(loaded, { logger: this.logger, events: this.events });
    } catch (error) {
      const issues = error instanceof ConfigError ? error.issues.map(formatIssue) : [(error as Error).message];
      this.logger.error({ errors: issues }, 'config reload rejected; the previous config keeps serving');
      this.events.emit({ type: 'sys_config_reload_fail', level: 'WARN', description: `config reload rejected: ${issues.length} error(s)`, data: { errors: issues.length } });
      return { ok: false, error: error as Error };
    }
    warnRestartOnly(old.loaded, next.loaded, this.logger);
    this.ref.current = next;
    this.#live.add(next);
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
    const server = this.app.server;
    const closed = this.app.close();
    // Connections that become idle while draining are closed as soon as they do.
    while (this.#inflight() > 0 && Date.now() < deadline) {
      server.closeIdleConnections();
      await delay(25);
    }
    const unfinished = this.#inflight();
    if (unfinished > 0) this.logger.warn({ unfinished }, 'drain deadline passed; closing connections with requests in flight');
    server.closeAllConnections();
    await closed;
    await Promise.allSettled([...this.#live].map((p) => p.close()));
    await this.admin?.close();
    this.logger.info({ type: 'event', event: 'sys_shutdown' }, 'Rampart stopped');
    flushLogger(this.logger);
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

function warnRestartOnly(old: LoadedConfig, next: LoadedConfig, logger: Logger): void {
  const a = old.config;
  const b = next.config;
  const changed: string[] = [];
  if (JSON.stringify(a.server.listen) !== JSON.stringify(b.server.listen)) changed.push('server.listen');
  if (JSON.stringify(a.server.timeouts) !== JSON.stringify(b.server.timeouts)) changed.push('server.timeouts');
  if (JSON.stringify(a.admin) !== JSON.stringify(b.admin)) changed.push('admin');
  if (JSON.stringify(a.log) !== JSON.stringify(b.log)) changed.push('log');
  if (a.watch !== b.watch) changed.push('watch');
  if (changed.length > 0) logger.warn({ keys: changed }, `these settings only change on restart: ${changed.join(', ')}`);
}

function addressUrl(app: FastifyInstance): string {
  const address = app.server.address();
  if (address === null || typeof address === 'string') return String(address);
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
