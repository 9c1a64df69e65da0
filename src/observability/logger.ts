import { resolve } from 'node:path';
import { pino, type Logger, type DestinationStream } from 'pino';
import { LOG_REDACT_PATHS, REDACTED } from './redact.js';

export type { Logger };

export interface LoggerOptions {
  level: string;
  /** `stdout`, `stderr` or a file path. */
  destination: string;
  /** Base directory for a relative file destination. */
  dir?: string;
}

/** Buffered destinations, flushed every 100 ms and synchronously at exit (one timer for all). */
const buffered = new Set<ReturnType<typeof pino.destination>>();
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

/** One JSON line per record; the one redaction list applies to everything logged. */
export function createLogger(options: LoggerOptions, stream?: DestinationStream): Logger {
  let destination = stream;
  if (destination === undefined) {
    const boom = pino.destination({
      dest: options.destination === 'stdout' ? 1 : options.destination === 'stderr' ? 2 : resolve(options.dir ?? '.', options.destination),
      // Async, batched writes keep the per-request path off the disk: lines are written in blocks
      // of at least 4 KiB, and at least every 100 ms; flushed synchronously at exit.
      sync: false,
      minLength: 4096,
      mkdir: true,
    });
    buffered.add(boom);
    startFlushing();
    destination = boom;
  }
  return pino(
    {
      level: options.level,
      base: { pid: process.pid },
      // Epoch milliseconds (pino's default): the ISO form cost ~2 µs per line.
      redact: { paths: [...LOG_REDACT_PATHS], censor: REDACTED },
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: pino.stdSerializers.err },
    },
    destination,
  );
}

/** Flushes a logger created with createLogger before the process exits. */
export function flushLogger(logger: Logger): void {
  try {
    logger.flush();
  } catch {
    // nothing to flush into
  }
}
