import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createHttpClient, parseTargetUrl, ScanRequestError } from './http.js';
import { CHECKS, runScan, ScanError, type RunOptions, type ScanResult } from './runner.js';
import { isSeverity, SEVERITIES, severityRank, type Check, type Severity } from './types.js';
import { readBaseline, toReport, type Baseline } from './report/baseline.js';
import { renderHtml } from './report/html.js';
import { renderJson } from './report/json.js';
import { createProgressBar } from './report/progress.js';
import { renderSarif } from './report/sarif.js';
import { printable, renderTerminal } from './report/terminal.js';

export interface ScanCliOptions {
  format: string;
  out?: string;
  failOn: string;
  rate: string;
  timeout: string;
  maxRequests: string;
  ca?: string;
  insecure?: boolean;
  verbose?: boolean;
  openapi?: string;
  auth?: string;
  authB?: string;
  login?: string;
  user?: string;
  password?: string;
  userB?: string;
  passwordB?: string;
  httpUrl?: string;
  safe?: boolean;
  destructive?: boolean;
  baseline?: string;
  checks?: string;
  skipChecks?: string;
}

export interface ScanIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Colour in the terminal report (stdout is a TTY). */
  color: boolean;
  /** Draw a progress bar on stderr while the scan runs (stderr is a TTY), through `write`. */
  progress?: boolean;
  /** Writes to stderr as is (no newline added): the progress bar's frames. */
  write?: (text: string) => void;
}

const FORMATS = ['terminal', 'json', 'sarif', 'html'] as const;
type Format = (typeof FORMATS)[number];
const FILES: Record<Exclude<Format, 'terminal'>, string> = { json: 'rampart-scan.json', sarif: 'rampart-scan.sarif', html: 'rampart-scan.html' };
const RENDER: Record<Exclude<Format, 'terminal'>, typeof renderJson> = { json: renderJson, sarif: renderSarif, html: renderHtml };

class UsageError extends Error {}

function positive(name: string, text: string, integer: boolean): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new UsageError(`${name} must be a positive ${integer ? 'integer' : 'number'}, not '${text}'`);
  return n;
}

function parseFormats(text: string, out: string | undefined): Format[] {
  const formats = text.split(',').map((f) => f.trim()).filter((f) => f !== '');
  for (const f of formats) if (!(FORMATS as readonly string[]).includes(f)) throw new UsageError(`unknown --format '${f}' (one or more of ${FORMATS.join(', ')})`);
  if (formats.length === 0) throw new UsageError('--format is empty');
  const files = formats.filter((f) => f !== 'terminal');
  // Without --out a machine format goes to stdout, alone: two documents (or one plus the terminal
  // report) in one stream could not be parsed.
  if (out === undefined && files.length > 0 && formats.length > 1) throw new UsageError(`--format ${text} needs --out DIR (only one format can go to stdout)`);
  return [...new Set(formats)] as Format[];
}

/** `--login PATH --user U --password P` (passwords may come from the environment, so they stay out of shell history and process lists). */
function loginOptions(opts: ScanCliOptions): RunOptions['login'] {
  const password = opts.password ?? process.env.RAMPART_SCAN_PASSWORD;
  const passwordB = opts.passwordB ?? process.env.RAMPART_SCAN_PASSWORD_B;
  if (opts.login === undefined) {
    if (opts.user !== undefined || opts.userB !== undefined) throw new UsageError('--user and --user-b need --login PATH');
    return undefined;
  }
  if (opts.user === undefined || password === undefined) throw new UsageError('--login needs --user and --password (or RAMPART_SCAN_PASSWORD)');
  if (opts.auth !== undefined) throw new UsageError('--login and --auth both give caller A: use one');
  if (opts.userB !== undefined && passwordB === undefined) throw new UsageError('--user-b needs --password-b (or RAMPART_SCAN_PASSWORD_B)');
  if (opts.userB !== undefined && opts.authB !== undefined) throw new UsageError('--user-b and --auth-b both give caller B: use one');
  return { path: opts.login, user: opts.user, password, userB: opts.userB, passwordB: opts.userB === undefined ? undefined : passwordB };
}

function checkIds(option: string, text: string): Set<string> {
  const ids = new Set(text.split(',').map((id) => id.trim()).filter((id) => id !== ''));
  const unknown = [...ids].filter((id) => !CHECKS.some((c) => c.id === id));
  if (unknown.length > 0) throw new UsageError(`${option}: no check ${unknown.map((id) => `'${id}'`).join(', ')} (the checks: ${CHECKS.map((c) => c.id).join(', ')})`);
  if (ids.size === 0) throw new UsageError(`${option} is empty`);
  return ids;
}

/** `--checks a,b` runs only those, `--skip-checks a,b` every other; in the usual order either way. */
function selectChecks(opts: ScanCliOptions): readonly Check[] {
  if (opts.checks !== undefined && opts.skipChecks !== undefined) throw new UsageError('--checks and --skip-checks exclude each other');
  if (opts.checks !== undefined) {
    const only = checkIds('--checks', opts.checks);
    return CHECKS.filter((c) => only.has(c.id));
  }
  if (opts.skipChecks !== undefined) {
    const skip = checkIds('--skip-checks', opts.skipChecks);
    return CHECKS.filter((c) => !skip.has(c.id));
  }
  return CHECKS;
}

/**
 * `rampart scan`: 0 when nothing at or above --fail-on (the baseline's accepted findings aside),
 * 1 when there is, 2 on a usage error, an unusable baseline or a target that cannot be scanned.
 */
export async function scanCommand(target: string, opts: ScanCliOptions, io: ScanIo): Promise<number> {
  let formats: Format[];
  let failOn: Severity;
  let url: URL;
  let ca: string | undefined;
  let settings: { rate: number; timeoutMs: number; budget: number };
  let login: RunOptions['login'];
  let checks: readonly Check[];
  let httpUrl: URL | undefined;
  let baseline: Baseline | undefined;
  try {
    url = parseTargetUrl(target);
    formats = parseFormats(opts.format, opts.out);
    if (!isSeverity(opts.failOn)) throw new UsageError(`--fail-on must be one of ${SEVERITIES.join(', ')}, not '${opts.failOn}'`);
    failOn = opts.failOn;
    settings = { rate: positive('--rate', opts.rate, false), timeoutMs: positive('--timeout', opts.timeout, false) * 1000, budget: positive('--max-requests', opts.maxRequests, true) };
    if (opts.ca !== undefined && opts.insecure === true) throw new UsageError('--ca and --insecure exclude each other');
    if (opts.ca !== undefined) ca = readFileSync(opts.ca, 'utf8');
    if (opts.safe === true && opts.destructive === true) throw new UsageError('--safe and --destructive exclude each other');
    login = loginOptions(opts);
    checks = selectChecks(opts);
    if (opts.httpUrl !== undefined) {
      httpUrl = parseTargetUrl(opts.httpUrl);
      if (httpUrl.protocol !== 'http:') throw new UsageError(`--http-url must be an http:// URL (the API's plain-HTTP address), not '${opts.httpUrl}'`);
    }
    // Read before any request is sent: a bad baseline ends the run before the scan, not after.
    if (opts.baseline !== undefined) {
      const out = opts.out;
      // This run's report in its place would accept every new finding next time.
      const written = out === undefined ? [] : formats.filter((f) => f !== 'terminal').map((f) => resolve(out, FILES[f]));
      if (written.includes(resolve(opts.baseline))) throw new UsageError(`--baseline ${opts.baseline} would be overwritten by this run's report: keep the baseline elsewhere (e.g. rampart-baseline.json)`);
      baseline = readBaseline(opts.baseline);
    }
  } catch (error) {
    io.err(`rampart scan: ${(error as Error).message}`);
    return 2;
  }
  if (opts.insecure === true) io.err('rampart scan: warning: --insecure: certificates are not verified');

  const bar = io.progress === true && io.write !== undefined ? createProgressBar(io.write) : undefined;
  // Log lines (--verbose, warnings) go above the bar, which is drawn again under them.
  // Log lines quote the target (a login's answer, a Location): printed inert, like the report.
  const say = (raw: string) => {
    const line = printable(raw);
    if (bar === undefined) io.err(line);
    else bar.line(() => io.err(line));
  };
  const logger = { debug: (m: string) => say(m), warn: (m: string) => say(`warning: ${m}`) };
  const http = createHttpClient({ ...settings, maxBodyBytes: 256 * 1024, ca, insecure: opts.insecure === true, logger, verbose: opts.verbose === true });
  let result: ScanResult;
  // Endpoint discovery (the crawl, the document, the login) comes before the first check.
  bar?.update({ done: 0, total: CHECKS.length, check: 'discovering endpoints', requests: 0 });
  try {
    result = await runScan({
      target: url,
      http,
      logger,
      options: { destructive: opts.destructive === true },
      openapi: opts.openapi,
      auth: opts.auth,
      authB: opts.authB,
      login,
      httpUrl,
      checks,
      progress: bar === undefined ? undefined : (p) => bar.update(p),
    });
  } catch (error) {
    bar?.clear();
    if (!(error instanceof ScanError) && !(error instanceof ScanRequestError)) throw error;
    io.err(`rampart scan: ${printable(error.message)}`);
    return 2;
  } finally {
    bar?.clear();
    await http.close();
  }
  const report = toReport(result, baseline);

  try {
    if (opts.out !== undefined) mkdirSync(opts.out, { recursive: true });
    for (const format of formats) {
      if (format === 'terminal') {
        for (const line of renderTerminal(report, { color: io.color })) io.out(line);
        continue;
      }
      const text = RENDER[format](report);
      if (opts.out === undefined) io.out(text.trimEnd());
      else {
        const file = join(opts.out, FILES[format]);
        writeFileSync(file, text);
        io.err(`wrote ${file}`);
      }
    }
  } catch (error) {
    io.err(`rampart scan: cannot write the report: ${(error as Error).message}`);
    return 2;
  }
  return report.findings.some((f) => !f.baselined && severityRank(f.severity) >= severityRank(failOn)) ? 1 : 0;
}
