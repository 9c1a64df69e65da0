import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Readable } from 'node:stream';
import { AggregatorRegistry } from 'prom-client';
import { loadConfigFile, type LoadedConfig } from '../config/load.js';
import { ConfigError, formatIssue } from '../config/errors.js';
import { sharedStateIssues } from '../config/shared-state.js';
import { parseDuration } from '../config/units.js';
import { closeLogger, createLogger, logDestination, reopenLogger } from '../observability/logger.js';
import { createEvents } from '../observability/events.js';
import type { Metrics } from '../observability/metrics.js';
import { buildPipeline } from './pipeline.js';
import type { GatewayRuntime, StartOptions } from './runtime.js';

/**
 * `rampart start --workers N`: a primary process that forks N workers with node:cluster. Each
 * worker runs the ordinary gateway runtime; the listening sockets are shared through the primary,
 * which hands connections out round-robin. The primary serves nothing itself: it validates the
 * config, forks, restarts crashed workers with backoff, fans SIGHUP and SIGTERM out, writes every
 * worker's log lines to the one destination, and aggregates the workers' metrics for `/metrics`.
 */

/** Set by the primary in each worker's environment: the worker's slot, 1…N, kept across restarts. */
export const WORKER_ENV = 'RAMPART_WORKER_ID';

/** Restart backoff: the first restart of a slot after this, doubling up to the maximum. */
export const RESTART_MIN_MS = 100;
export const RESTART_MAX_MS = 10_000;
/** A worker that stayed up this long starts the backoff of its slot afresh. */
export const RESTART_RESET_MS = 30_000;
/** How long a worker waits for the primary's aggregated metrics. */
const METRICS_TIMEOUT_MS = 6000;

/** How long the primary waits for every worker's registry when gathering metrics. */
const COLLECT_TIMEOUT_MS = 4000;

type MetricsJson = Awaited<ReturnType<Metrics['registry']['getMetricsAsJSON']>>;
type ToWorker =
  | { rampart: 'reload' }
  | { rampart: 'shutdown'; signal: string }
  | { rampart: 'collect'; id: number }
  | { rampart: 'metrics'; id: number; text?: string; contentType?: string; error?: string };
type ToPrimary = { rampart: 'ready' } | { rampart: 'metrics'; id: number } | { rampart: 'collected'; id: number; metrics?: MetricsJson; error?: string };

/** Whether this process is a worker forked by `runPrimary`. */
export function isWorkerProcess(): boolean {
  return cluster.isWorker && process.env[WORKER_ENV] !== undefined;
}

/**
 * How many workers to run when `--workers` is not given: one per core when the config keeps its
 * shared state in Redis (and nothing in process memory), else 1 — today's single process.
 */
export function defaultWorkers(loaded: LoadedConfig): { workers: number; reason: string } {
  if (loaded.config.redis === undefined) return { workers: 1, reason: 'no shared store (redis) configured' };
  const issues = sharedStateIssues(loaded);
  if (issues.length > 0) return { workers: 1, reason: `state kept in process memory: ${issues.map(formatIssue).join('; ')}` };
  return { workers: availableParallelism(), reason: 'one per core (redis configured)' };
}

/**
 * Everything the primary checks before forking or fanning out a reload: the config as `rampart
 * validate` builds it, and (for several workers) no state that must be shared kept in memory.
 * Throws ConfigError with located issues.
 */
export function checkConfig(file: string, workers: number): LoadedConfig {
  const loaded = loadConfigFile(file);
  const logger = createLogger({ level: 'silent', destination: 'stderr' });
  void buildPipeline(loaded, { logger, events: createEvents(logger) }).close();
  if (workers > 1) {
    const issues = sharedStateIssues(loaded);
    if (issues.length > 0) throw new SharedStateError(issues, workers);
  }
  return loaded;
}

/** A config that keeps state in process memory, refused with `--workers > 1`. */
export class SharedStateError extends ConfigError {
  readonly workers: number;
  constructor(issues: ConstructorParameters<typeof ConfigError>[0], workers: number) {
    super(issues);
    this.workers = workers;
  }
}

interface Slot {
  id: number;
  worker: Worker | undefined;
  startedAt: number;
  /** Serving (it said so): only ready workers are asked for their metrics. */
  ready: boolean;
  /** When it last exited unexpectedly (for the restart time logged). */
  exitedAt: number | undefined;
  backoffMs: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Runs the primary: forks `workers` workers and resolves once they all serve (0), or with 1 when
 * one fails to start (its error is on stderr; the others are stopped). It then keeps running until
 * SIGTERM/SIGINT, and exits the process itself.
 */
export async function runPrimary(file: string, loaded: LoadedConfig, workers: number): Promise<number> {
  const config = loaded.config;
  const logger = createLogger({ ...config.log, dir: loaded.dir, base: { worker: 'primary' } });
  const destination = logDestination(logger);
  const collections = new Map<number, { waiting: Set<Worker>; results: MetricsJson[]; done: (error?: Error) => void }>();
  let collected = 0;
  /**
   * Every serving worker's registry, aggregated (counters and histograms summed). A worker that
   * exits meanwhile is left out; one that does not answer in time fails the whole collection,
   * rather than showing part of the workers as all of them.
   */
  const collect = (): Promise<{ contentType: string; text: string }> =>
    new Promise((resolve, reject) => {
      const id = ++collected;
      const targets = slots.flatMap((s) => (s.worker !== undefined && s.ready && s.worker.isConnected() ? [s.worker] : []));
      const entry = {
        waiting: new Set(targets),
        results: [] as MetricsJson[],
        done: (error?: Error) => {
          clearTimeout(timer);
          collections.delete(id);
          if (error !== undefined) return reject(error);
          const registry = AggregatorRegistry.aggregate(entry.results);
          registry.metrics().then((text) => resolve({ contentType: registry.contentType, text }), reject);
        },
      };
      const timer = setTimeout(() => entry.done(new Error(`${entry.waiting.size} worker(s) did not send their metrics within ${COLLECT_TIMEOUT_MS} ms`)), COLLECT_TIMEOUT_MS);
      collections.set(id, entry);
      for (const worker of targets) worker.send({ rampart: 'collect', id } satisfies ToWorker);
      if (targets.length === 0) entry.done();
    });
  const settle = (worker: Worker, id: number | undefined, metrics: MetricsJson | undefined, error?: string) => {
    for (const [key, entry] of collections) {
      if ((id !== undefined && key !== id) || !entry.waiting.delete(worker)) continue;
      if (error !== undefined) entry.done(new Error(`a worker's metrics: ${error}`));
      else {
        if (metrics !== undefined) entry.results.push(metrics);
        if (entry.waiting.size === 0) entry.done();
      }
    }
  };
  const slots: Slot[] = Array.from({ length: workers }, (_, i) => ({ id: i + 1, worker: undefined, startedAt: 0, ready: false, exitedAt: undefined, backoffMs: RESTART_MIN_MS, timer: undefined }));
  const bySlot = new Map<Worker, Slot>();
  let drainMs = parseDuration(config.server.drainTimeout);
  let stopping: Promise<never> | undefined;
  let startup: ((ok: boolean) => void) | undefined;
  let ready = 0;
  let failed = false;

  // Worker output comes through pipes and is written out whole lines at a time, so lines of
  // different workers never interleave, and a log file has one writer (and one rotation).
  cluster.setupPrimary({ silent: true });

  const fork = (slot: Slot) => {
    slot.timer = undefined;
    const worker = cluster.fork({ [WORKER_ENV]: String(slot.id) });
    slot.worker = worker;
    slot.startedAt = Date.now();
    slot.ready = false;
    bySlot.set(worker, slot);
    // A message sent just as the worker died fails (ERR_IPC_CHANNEL_CLOSED): its exit follows and
    // is handled there; unhandled, the error would end the primary.
    worker.on('error', (error: Error) => logger.warn({ slot: slot.id, workerPid: worker.process.pid, err: error.message }, `worker ${slot.id}: ${error.message}`));
    pipeLines(worker.process.stdout, (text) => destination.write(text));
    pipeLines(worker.process.stderr, (text) => process.stderr.write(text));
    worker.on('message', (message: ToPrimary) => {
      if (message?.rampart === 'ready') {
        if (slot.exitedAt !== undefined) logger.info({ slot: slot.id, workerPid: worker.process.pid, restartMs: Date.now() - slot.exitedAt }, `worker ${slot.id} restarted (pid ${worker.process.pid})`);
        slot.exitedAt = undefined;
        slot.ready = true;
        if (startup !== undefined && ++ready === workers) startup(true);
      } else if (message?.rampart === 'metrics') {
        const answer = (m: ToWorker) => {
          if (worker.isConnected()) worker.send(m);
        };
        collect().then(
          ({ contentType, text }) => answer({ rampart: 'metrics', id: message.id, text, contentType }),
          (error: unknown) => answer({ rampart: 'metrics', id: message.id, error: (error as Error).message }),
        );
      } else if (message?.rampart === 'collected') settle(worker, message.id, message.metrics, message.error);
    });
  };

  cluster.on('exit', (worker, code, signal) => {
    const slot = bySlot.get(worker);
    bySlot.delete(worker);
    if (slot === undefined) return;
    slot.worker = undefined;
    slot.ready = false;
    // Its figures are gone with it: collections in progress stop waiting for them.
    settle(worker, undefined, undefined);
    if (stopping !== undefined) return;
    if (startup !== undefined) {
      // A worker that cannot start (a port in use, the database away) would fail the same way
      // on every restart: the start fails as a single process's would.
      logger.error({ slot: slot.id, workerPid: worker.process.pid, code, signal }, `worker ${slot.id} failed to start; stopping`);
      failed = true;
      startup(false);
      return;
    }
    const now = Date.now();
    if (now - slot.startedAt >= RESTART_RESET_MS) slot.backoffMs = RESTART_MIN_MS;
    const delayMs = slot.backoffMs;
    slot.backoffMs = Math.min(slot.backoffMs * 2, RESTART_MAX_MS);
    slot.exitedAt ??= now;
    logger.error({ slot: slot.id, workerPid: worker.process.pid, code, signal, uptimeMs: now - slot.startedAt, restartInMs: delayMs }, `worker ${slot.id} (pid ${worker.process.pid}) exited unexpectedly (${signal ?? `code ${code}`}); restarting in ${delayMs} ms`);
    slot.timer = setTimeout(() => fork(slot), delayMs);
  });

  const stop = (reason: string): Promise<never> => {
    stopping ??= (async () => {
      for (const slot of slots) clearTimeout(slot.timer);
      const running = slots.flatMap((s) => (s.worker === undefined ? [] : [s.worker]));
      logger.info({ reason, workers: running.length }, `Rampart primary stopping (${reason}): draining ${running.length} worker(s)`);
      const codes = await Promise.all(
        running.map(
          (worker) =>
            new Promise<number | null>((resolve) => {
              // Bounded: a worker still there past its drain timeout (and a margin) is killed.
              const timer = setTimeout(() => worker.process.kill('SIGKILL'), drainMs + 5000);
              worker.once('exit', (code: number | null) => (clearTimeout(timer), resolve(code)));
              if (worker.isConnected()) worker.send({ rampart: 'shutdown', signal: reason } satisfies ToWorker);
              else worker.process.kill('SIGTERM');
            }),
        ),
      );
      const bad = codes.filter((c) => c !== 0).length;
      if (bad > 0) logger.error({ failed: bad }, `${bad} worker(s) did not stop cleanly`);
      logger.info({ type: 'event', event: 'sys_shutdown' }, 'Rampart primary stopped');
      await closeLogger(logger);
      process.exit(bad > 0 || failed ? 1 : 0);
    })();
    return stopping;
  };

  const started = await new Promise<boolean>((resolve) => {
    startup = resolve;
    for (const slot of slots) fork(slot);
  });
  startup = undefined;
  if (!started) return stop('a worker failed to start');
  logger.info({ workers, pids: slots.map((s) => s.worker?.process.pid) }, `Rampart primary (pid ${process.pid}): ${workers} workers serving`);

  process.on('SIGHUP', () => {
    if (stopping !== undefined) return;
    reopenLogger(logger);
    let next: LoadedConfig;
    try {
      next = checkConfig(file, workers);
    } catch (error) {
      const errors = error instanceof ConfigError ? error.issues.map(formatIssue) : [(error as Error).message];
      logger.error({ errors }, 'config reload rejected; every worker keeps the previous config');
      return;
    }
    drainMs = parseDuration(next.config.server.drainTimeout);
    for (const slot of slots) if (slot.worker?.isConnected() === true) slot.worker.send({ rampart: 'reload' } satisfies ToWorker);
    logger.info({ workers: slots.filter((s) => s.worker !== undefined).length }, 'config valid; reload sent to every worker');
  });
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  return 0;
}

/**
 * Runs this process as a worker: the ordinary runtime, plus the primary's messages (reload,
 * shutdown, aggregated metrics). `start` is GatewayRuntime.start (passed in to keep the import
 * graph one-way). Resolves to the runtime, or throws what start threw.
 */
export async function runWorker(options: StartOptions, start: (options: StartOptions) => Promise<GatewayRuntime>): Promise<GatewayRuntime> {
  const id = Number(process.env[WORKER_ENV]);
  const pending = new Map<number, { resolve: (m: { contentType: string; text: string }) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  let next = 0;
  // Set once started; signals and messages may come before.
  const live: { runtime?: GatewayRuntime } = {};
  let stopping = false;
  const stop = (reason: string) => {
    if (stopping) return;
    stopping = true;
    if (live.runtime === undefined) process.exit(1);
    void live.runtime.shutdown(reason).then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`rampart: worker ${id}: shutdown failed: ${(error as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  let registry: Metrics['registry'] | undefined;
  /** Sends to the primary while it is there (after it died, the worker is on its way out). */
  const tell = (message: ToPrimary): boolean => {
    if (!process.connected) return false;
    process.send!(message);
    return true;
  };
  process.on('message', (message: ToWorker) => {
    if (message?.rampart === 'collect') {
      const id = message.id;
      if (registry === undefined) tell({ rampart: 'collected', id, metrics: [] });
      else {
        registry.getMetricsAsJSON().then(
          (metrics) => tell({ rampart: 'collected', id, metrics }),
          (error: unknown) => tell({ rampart: 'collected', id, error: (error as Error).message }),
        );
      }
    } else if (message?.rampart === 'reload') {
      live.runtime?.reopenLogs();
      void live.runtime?.reload();
    } else if (message?.rampart === 'shutdown') stop(message.signal);
    else if (message?.rampart === 'metrics') {
      const waiting = pending.get(message.id);
      if (waiting === undefined) return;
      pending.delete(message.id);
      clearTimeout(waiting.timer);
      if (message.error !== undefined || message.text === undefined) waiting.reject(new Error(`metrics of the workers: ${message.error ?? 'no answer'}`));
      else waiting.resolve({ contentType: message.contentType ?? 'text/plain; version=0.0.4; charset=utf-8', text: message.text });
    }
  });
  const metrics = (): Promise<{ contentType: string; text: string }> =>
    new Promise((resolve, reject) => {
      const key = ++next;
      const timer = setTimeout(() => (pending.delete(key), reject(new Error(`the primary did not answer with the workers' metrics within ${METRICS_TIMEOUT_MS} ms`))), METRICS_TIMEOUT_MS);
      pending.set(key, { resolve, reject, timer });
      if (!tell({ rampart: 'metrics', id: key })) {
        clearTimeout(timer);
        pending.delete(key);
        reject(new Error('the primary is gone'));
      }
    });
  // The primary fans signals out; one sent to the whole process group (Ctrl-C) stops this worker too.
  process.on('SIGHUP', () => {});
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  // The primary is gone (killed): nothing would restart or stop this worker any more.
  process.once('disconnect', () => stop('primary exited'));
  const runtime = await start({
    ...options,
    worker: {
      id,
      metrics,
      // What the primary's collections read from now on.
      register: (m: Metrics) => (registry = m.registry),
    },
  });
  live.runtime = runtime;
  if (stopping) {
    // Told to stop while starting: now there is a runtime to drain.
    stopping = false;
    stop('stopped while starting');
  } else tell({ rampart: 'ready' });
  return runtime;
}

/** Calls `write` with whole lines of `stream` (the last, unfinished one is kept for the next chunk). */
function pipeLines(stream: Readable | null, write: (text: string) => void): void {
  if (stream === null) return;
  stream.setEncoding('utf8');
  let partial = '';
  stream.on('data', (chunk: string) => {
    const end = chunk.lastIndexOf('\n');
    if (end === -1) {
      partial += chunk;
      return;
    }
    write(partial + chunk.slice(0, end + 1));
    partial = chunk.slice(end + 1);
  });
  stream.on('end', () => {
    if (partial !== '') write(partial + '\n');
    partial = '';
  });
}
