import { resolve } from 'node:path';
import { pino, type Logger, type DestinationStream } from 'pino';
import { parseDuration, parseSize } from '../config/units.js';
import { LogFile } from './log-file.js';
import { LOG_REDACT_PATHS, REDACTED } from './redact.js';

export type { Logger };
export { LogFileError } from './log-file.js';

export interface LoggerOptions {
  level: string;
  /** `stdout`, `stderr` or a file path. */
  destination: string;
  /** Base directory for a relative file destination. */
  dir?: string;
  /** Rotation of a file destination (`log.rotate`). */
  rotate?: { maxSize: string; maxFiles: number; interval?: string | undefined } | undefined;
  /** Fields added to every line next to `pid` (a worker process's `worker` id). */
  base?: Record<string, unknown>;
}

/** Buffered destinations, flushed every 100 ms and synchronously at exit (one timer for all). */
const buffered = new Set<{ flush(): void; flushSync(): void }>();
/** The file behind a logger writing to one (for reopen and close). */
const files = new WeakMap<Logger, LogFile>();
let flushing = false;

function startFlushing(): void {
  if (flushing) return;
  flushing = true;
  setInterval(() => {
    for (const boom of buffered) {
      try {
        boom.flush();
      } catch {
        // nothing buffered, or a write in progress: the next tick retries
      }
    }
  }, 100).unref();
  process.once('exit', () => {
    for (const boom of buffered) {
      try {
        boom.flushSync();
      } catch {
        // the destination is gone
      }
    }
  });
}

/**
 * One JSON line per record; the one redaction list applies to everything logged, whatever the
 * destination. A file destination is created (with its directory) and opened here, synchronously:
 * a path that cannot be is a LogFileError at start, not a crash later.
 */
export function createLogger(options: LoggerOptions, stream?: DestinationStream): Logger {
  let destination = stream;
  let file: LogFile | undefined;
  if (destination === undefined && options.destination !== 'stdout' && options.destination !== 'stderr') {
    const rotate = options.rotate;
    file = new LogFile(
      resolve(options.dir ?? '.', options.destination),
      rotate === undefined ? undefined : { maxSize: parseSize(rotate.maxSize), maxFiles: rotate.maxFiles, intervalMs: rotate.interval === undefined ? undefined : parseDuration(rotate.interval) },
    );
    buffered.add(file);
    startFlushing();
    destination = file;
  }
  if (destination === undefined) {
    const boom = pino.destination({
      dest: options.destination === 'stdout' ? 1 : 2,
      // Async, batched writes keep the per-request path off the disk: lines are written in blocks
      // of at least 4 KiB, and at least every 100 ms; flushed synchronously at exit.
      sync: false,
      minLength: 4096,
    });
    buffered.add(boom);
    startFlushing();
    destination = boom;
  }
  const logger = pino(
    {
      level: options.level,
      base: { pid: process.pid, ...options.base },
      // Epoch milliseconds (pino's default): the ISO form cost ~2 µs per line.
      redact: { paths: [...LOG_REDACT_PATHS], censor: REDACTED },
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: pino.stdSerializers.err },
    },
    destination,
  );
  if (file !== undefined) files.set(logger, file);
  return logger;
}

/**
 * The destination a logger writes to: the primary process of `--workers` writes its workers'
 * lines there, whole lines at a time, so they share the one stream (and its rotation).
 */
export function logDestination(logger: Logger): DestinationStream {
  return (logger as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym]!;
}

/** Flushes a logger created with createLogger before the process exits. */
export function flushLogger(logger: Logger): void {
  try {
    logger.flush();
  } catch {
    // nothing to flush into
  }
}

/** Reopens the log file of a logger writing to one (SIGHUP, after an external logrotate); else nothing. */
export function reopenLogger(logger: Logger): void {
  files.get(logger)?.reopen();
}

/** At shutdown: everything buffered is written, and a log file closed (later lines are dropped). */
export async function closeLogger(logger: Logger): Promise<void> {
  const file = files.get(logger);
  if (file === undefined) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      try {
        logger.flush(() => (clearTimeout(timer), resolve()));
      } catch {
        clearTimeout(timer);
        resolve();
      }
    });
    return;
  }
  buffered.delete(file);
  files.delete(logger);
  await file.close();
}
