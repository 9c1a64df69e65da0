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

/** One JSON line per record; the one redaction list applies to everything logged. */
export function createLogger(options: LoggerOptions, stream?: DestinationStream): Logger {
  const destination =
    stream ??
    pino.destination({
      dest: options.destination === 'stdout' ? 1 : options.destination === 'stderr' ? 2 : resolve(options.dir ?? '.', options.destination),
      // Async writes keep the per-request path off the disk; flushed at exit.
      sync: false,
      mkdir: true,
    });
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
