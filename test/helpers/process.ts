import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Runs the CLI from source (`node --import tsx src/cli/main.ts …`) as a real child process,
 * collects its output line by line and lets a test wait for a line, never for a fixed time.
 * Every child started here is tracked; `killAll()` (in afterEach) ends whatever is still running.
 */

/** The repository root: children run from here so `--import tsx` and `src/cli/main.ts` resolve. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** How long a wait may take by default: generous for a cold `tsx` start on a busy 2-core machine. */
export const DEFAULT_TIMEOUT_MS = 15_000;

export type LogRecord = Record<string, unknown>;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  /** Added to (and overriding) the test process's environment. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

type Stream = 'stdout' | 'stderr';

interface Waiter {
  stream: Stream;
  from: number;
  test: (line: string) => boolean;
  resolve: (index: number) => void;
}

export class CliProcess {
  readonly child: ChildProcess;
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<Exit>;
  #exit: Exit | undefined;
  #waiters = new Set<Waiter>();
  #onExit = new Set<() => void>();

  constructor(args: readonly string[], options: SpawnOptions = {}) {
    this.child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, NO_COLOR: '1', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#collect('stdout');
    this.#collect('stderr');
    this.exited = new Promise<Exit>((resolve) => {
      // 'close' (not 'exit'): every line the child wrote has been read by then.
      this.child.once('close', (code, signal) => {
        this.#exit = { code, signal };
        for (const notify of this.#onExit) notify();
        resolve(this.#exit);
      });
    });
    live.add(this);
    void this.exited.then(() => live.delete(this));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Whether the process is still running (its output not yet closed). */
  get running(): boolean {
    return this.#exit === undefined;
  }

  /** stdout lines parsed as JSON (the gateway's log); other lines are skipped. */
  logs(from = 0): LogRecord[] {
    return this.stdout.slice(from).flatMap((line) => {
      const parsed = parseJson(line);
      return parsed === undefined ? [] : [parsed];
    });
  }

  /**
   * Waits for a line (at index ≥ `from`) matching `test` and returns its index. Rejects when the
   * process ends first or after `timeoutMs`, quoting everything it wrote.
   */
  waitForLine(test: (line: string) => boolean, options: { stream?: Stream; from?: number; timeoutMs?: number } = {}): Promise<number> {
    const stream = options.stream ?? 'stdout';
    const from = options.from ?? 0;
    const lines = this[stream];
    for (let i = from; i < lines.length; i++) if (test(lines[i]!)) return Promise.resolve(i);
    return new Promise<number>((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        this.#onExit.delete(onExit);
      };
      const waiter: Waiter = { stream, from, test, resolve: (i) => (done(), resolve(i)) };
      const onExit = () => {
        done();
        reject(new Error(`process exited (${JSON.stringify(this.#exit)}) before the awaited ${stream} line\n${this.transcript()}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching ${stream} line within ${timeoutMs} ms\n${this.transcript()}`));
      }, timeoutMs);
      this.#waiters.add(waiter);
      if (this.#exit !== undefined) onExit();
      else this.#onExit.add(onExit);
    });
  }

  /** Waits for a JSON log record on stdout matching `test`; returns it and its line index. */
  async waitForLog(test: (record: LogRecord) => boolean, options: { from?: number; timeoutMs?: number } = {}): Promise<{ record: LogRecord; index: number }> {
    const index = await this.waitForLine((line) => {
      const record = parseJson(line);
      return record !== undefined && test(record);
    }, options);
    return { record: parseJson(this.stdout[index]!)!, index };
  }

  /** Waits for a security event (`"event": name`, possibly with `:args`) in the log. */
  waitForEvent(name: string, options: { from?: number; timeoutMs?: number } = {}): Promise<{ record: LogRecord; index: number }> {
    return this.waitForLog((r) => r.type === 'event' && typeof r.event === 'string' && (r.event === name || r.event.startsWith(name + ':')), options);
  }

  /** Resolves when the process has exited; rejects (and kills it) after `timeoutMs`. */
  waitForExit(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Exit> {
    if (this.#exit !== undefined) return Promise.resolve(this.#exit);
    return new Promise<Exit>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`process still running after ${timeoutMs} ms\n${this.transcript()}`));
        this.kill();
      }, timeoutMs);
      void this.exited.then((exit) => {
        clearTimeout(timer);
        resolve(exit);
      });
    });
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** Ends the process by its pid (SIGKILL) and waits until it is gone. */
  async kill(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** Everything the process wrote, for failure messages. */
  transcript(): string {
    return `--- stdout ---\n${this.stdout.join('\n')}\n--- stderr ---\n${this.stderr.join('\n')}`;
  }

  #collect(stream: Stream): void {
    const source = this.child[stream]!;
    source.setEncoding('utf8');
    let partial = '';
    const push = (line: string) => {
      const lines = this[stream];
      lines.push(line);
      const index = lines.length - 1;
      for (const waiter of this.#waiters) {
        if (waiter.stream === stream && index >= waiter.from && waiter.test(line)) waiter.resolve(index);
      }
    };
    source.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop()!;
      for (const part of parts) push(part);
    });
    source.on('end', () => {
      if (partial !== '') push(partial);
      partial = '';
    });
  }
}

const live = new Set<CliProcess>();

/** Starts the CLI with `args`. */
export function spawnCli(args: readonly string[], options?: SpawnOptions): CliProcess {
  return new CliProcess(args, options);
}

/** Runs the CLI to completion and returns its exit code and output lines. */
export async function runCli(args: readonly string[], options?: SpawnOptions & { timeoutMs?: number }): Promise<{ code: number | null; stdout: string[]; stderr: string[] }> {
  const cli = spawnCli(args, options);
  const exit = await cli.waitForExit(options?.timeoutMs);
  return { code: exit.code, stdout: cli.stdout, stderr: cli.stderr };
}

/** Kills every child started by this module that is still running. Call it in afterEach. */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((cli) => cli.kill()));
}

export interface Gateway {
  cli: CliProcess;
  /** `http://127.0.0.1:PORT` of the gateway listener, from the `sys_startup` line. */
  url: string;
}

/** Starts `rampart start -c FILE` and waits for its `sys_startup` line. */
export async function startGateway(configFile: string, options?: SpawnOptions): Promise<Gateway> {
  const cli = spawnCli(['start', '-c', configFile], options);
  const { record } = await cli.waitForEvent('sys_startup');
  const match = /gateway on (http:\/\/127\.0\.0\.1:\d+)/.exec(String(record.msg));
  if (match === null) throw new Error(`no gateway address in the startup line: ${JSON.stringify(record)}`);
  return { cli, url: match[1]! };
}

function parseJson(line: string): LogRecord | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as LogRecord) : undefined;
  } catch {
    return undefined;
  }
}
