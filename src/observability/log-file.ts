import { closeSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino } from 'pino';

type Boom = ReturnType<typeof pino.destination>;

/** The log file cannot be created or opened at start (its directory cannot be made, no permission…). */
export class LogFileError extends Error {
  readonly file: string;
  constructor(file: string, cause: unknown) {
    const e = cause as NodeJS.ErrnoException;
    // (mkdir says EEXIST when the last directory of the path exists as a file.)
    const why = e.code === 'EACCES' || e.code === 'EPERM' ? 'permission denied' : e.code === 'ENOTDIR' || e.code === 'EEXIST' ? 'a part of the path is not a directory' : e.code === 'EISDIR' ? 'it is a directory' : e.code === 'EROFS' ? 'read-only file system' : e.message;
    super(`cannot open the log file ${file}: ${why}${e.code !== undefined ? ` (${e.code})` : ''}`, { cause });
    this.name = 'LogFileError';
    this.file = file;
  }
}

export interface Rotation {
  /** Rotate at the first line that would take the file past this many bytes. */
  maxSize: number;
  /** Rotated files kept: `<file>.1` (newest) … `<file>.<maxFiles>` (oldest). */
  maxFiles: number;
  /** Also rotate a non-empty file this often (milliseconds). */
  intervalMs: number | undefined;
}

/**
 * A log file appended to asynchronously in batches (sonic-boom, as `pino.destination`), rotated
 * by size and optionally by time, and reopened on demand for an external logrotate (SIGHUP).
 *
 * The size counted is what was written to the file (sonic-boom's `write` events), not what was
 * handed over: under a burst, lines wait in sonic-boom's buffer, and counting them would rotate
 * files that have nothing in them yet. The write that takes the file to `maxSize` starts the
 * rotation: the file is renamed while sonic-boom keeps its descriptor, the rest of that write
 * (a partial write) finishes on the old descriptor, into `<file>.1`, and sonic-boom then
 * reopens the path; whatever is still buffered goes to the new file. sonic-boom writes whole
 * lines, and never splits one write between two descriptors: no line is split or lost. A file
 * exceeds `maxSize` by at most one write (16 KiB). No rotation starts while the previous reopen
 * is in progress (so a burst can never delete a file still being written).
 */
export class LogFile {
  readonly path: string;
  readonly #boom: Boom;
  readonly #rotation: Rotation | undefined;
  readonly #timer: NodeJS.Timeout | undefined;
  /** Bytes in the current file (what it had at open, plus what was written to it since). */
  #size: number;
  /** A reopen was asked for and sonic-boom has not opened the new file yet. */
  #reopening = false;
  #closed = false;
  #reported = false;

  /** Creates the directory and opens the file synchronously, so a bad path is a start error (LogFileError). */
  constructor(path: string, rotation?: Rotation) {
    this.path = path;
    this.#rotation = rotation;
    try {
      mkdirSync(dirname(path), { recursive: true });
      const fd = openSync(path, 'a');
      try {
        this.#size = fstatSync(fd).size;
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      throw new LogFileError(path, error);
    }
    // Async, batched writes keep the per-request path off the disk: lines are written in blocks
    // of at least 4 KiB, and at least every 100 ms (logger.ts); flushed synchronously at exit.
    this.#boom = pino.destination({ dest: path, sync: false, minLength: 4096, mkdir: true });
    this.#boom.on('ready', () => (this.#reopening = false));
    if (rotation !== undefined) {
      this.#boom.on('write', (n: number) => {
        // While reopening, the writes are the end of the previous file's last write.
        if (this.#reopening) return;
        this.#size += n;
        if (this.#size >= rotation.maxSize) this.rotate();
      });
    }
    this.#boom.on('error', (error: Error) => {
      this.#reopening = false;
      this.#report(error);
    });
    if (rotation?.intervalMs !== undefined) {
      this.#timer = setInterval(() => {
        if (this.#size > 0) this.rotate();
      }, rotation.intervalMs);
      this.#timer.unref();
    }
  }

  /** One whole line from pino. */
  write(line: string): boolean {
    if (this.#closed) return true;
    return this.#boom.write(line);
  }

  /**
   * `<file>.<maxFiles>` deleted, the others shifted by one, the current file renamed `<file>.1`,
   * and the path reopened. Rare (once per `maxSize`), so the renames are synchronous: a handful of
   * system calls, and nothing can be written in between.
   */
  rotate(): void {
    const rotation = this.#rotation;
    if (rotation === undefined || this.#closed || this.#reopening) return;
    const path = this.path;
    try {
      rmSync(`${path}.${rotation.maxFiles}`, { force: true });
      for (let i = rotation.maxFiles - 1; i >= 1; i--) renameIfPresent(`${path}.${i}`, `${path}.${i + 1}`);
      renameIfPresent(path, `${path}.1`);
    } catch (error) {
      // Keep writing to the current file rather than lose lines; the next line tries again.
      this.#report(error as Error);
      return;
    }
    this.#size = 0;
    this.#reopen();
  }

  /** Reopens the path (after an external logrotate moved the file away: SIGHUP). */
  reopen(): void {
    if (this.#closed) return;
    try {
      this.#size = statSync(this.path).size;
    } catch {
      this.#size = 0;
    }
    this.#reopen();
  }

  #reopen(): void {
    this.#reopening = true;
    try {
      this.#boom.reopen();
    } catch (error) {
      this.#reopening = false;
      this.#report(error as Error);
    }
  }

  flush(cb?: (error?: Error) => void): void {
    try {
      this.#boom.flush(cb);
    } catch (error) {
      cb?.(error as Error);
    }
  }

  flushSync(): void {
    this.#boom.flushSync();
  }

  /**
   * Writes what is buffered (still rotating by size: sonic-boom cannot reopen once it is ending)
   * and closes the file; lines logged afterwards are dropped.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#timer);
    const boom = this.#boom;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5000);
      this.flush(() => (clearTimeout(timer), resolve()));
    });
    this.#closed = true;
    await new Promise<void>((resolve) => {
      const done = () => (clearTimeout(timer), resolve());
      const timer = setTimeout(done, 2000);
      boom.once('close', done);
      try {
        boom.end();
      } catch {
        done();
      }
    });
  }

  /** A failing disk is said once on stderr (the log itself may be what fails), then quietly retried. */
  #report(error: Error): void {
    if (this.#reported) return;
    this.#reported = true;
    process.stderr.write(`rampart: log file ${this.path}: ${error.message}\n`);
  }
}

function renameIfPresent(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
