import { corsCheck } from './checks/cors.js';
import { headersCheck } from './checks/headers.js';
import { BudgetExhaustedError, ScanRequestError, type ScanHttpClient, type ScanResponse } from './http.js';
import { SEVERITIES, severityRank, type Check, type Endpoint, type Finding, type ScanLogger, type ScanOptions, type Severity } from './types.js';

/** Every check, in the order they run (and the order of the SARIF rules). */
export const CHECKS: readonly Check[] = [headersCheck, corsCheck];

/**
 * Paths tried when no OpenAPI document is given, relative to the base URL's path. Bounded on
 * purpose: this is a sample to judge a host by, not a content-discovery brute force.
 */
export const COMMON_PATHS: readonly string[] = ['health', 'healthz', 'api', 'api/v1', 'openapi.json', 'swagger.json', 'v1'];

export interface ScanResult {
  target: string;
  startedAt: string;
  finishedAt: string;
  findings: Finding[];
  checks: readonly Check[];
  stats: ScanStats;
}

export interface ScanStats {
  requests: number;
  budget: number;
  durationMs: number;
  endpoints: number;
  /** Checks stopped early because the request budget was spent. */
  incompleteChecks: string[];
  bySeverity: Record<Severity, number>;
}

/** The target could not be scanned at all (unreachable, TLS refused…): exit code 2. */
export class ScanError extends Error {
  override name = 'ScanError';
}

export interface RunOptions {
  target: URL;
  http: ScanHttpClient;
  logger: ScanLogger;
  options?: Partial<ScanOptions>;
  checks?: readonly Check[];
}

// TODO(issue 10): endpoints from `--openapi FILE|URL` (3.0 and 3.1, every operation with its
// method; zero operations is an error) and a bounded crawl of links; see "Not yet" in docs/scanner.md.
// Until then the checks get GET endpoints from the common paths below, and say nothing about operations.

/** Discovery: the base URL (must answer, whatever its status) plus the common paths that are not 404/405. */
async function discover(target: URL, http: ScanHttpClient, logger: ScanLogger): Promise<{ endpoints: Endpoint[]; observed: ScanResponse[] }> {
  const base = new URL(target.href.endsWith('/') ? target.href : `${target.href}/`);
  const observed: ScanResponse[] = [];
  const endpoints: Endpoint[] = [];
  // The target itself, exactly as given, comes first; then the common paths under it.
  const urls = [target.href, ...COMMON_PATHS.map((p) => new URL(p, base).href)].filter((u, i, all) => all.indexOf(u) === i);
  let first = true;
  for (const href of urls) {
    const url = new URL(href);
    let res: ScanResponse;
    try {
      res = await http.send({ url, followSameHostRedirects: true });
    } catch (error) {
      if (first) throw new ScanError(`the target does not answer: ${(error as Error).message}`, { cause: error });
      if (error instanceof BudgetExhaustedError) break; // the checks judge what was seen; the stats say the budget ran out
      logger.warn(`${url.href}: ${(error as Error).message}`);
      continue;
    }
    observed.push(res);
    if (first || (res.status !== 404 && res.status !== 405)) endpoints.push({ method: 'GET', url: new URL(res.request.url) });
    first = false;
  }
  return { endpoints, observed };
}

export function sortFindings(findings: Finding[]): Finding[] {
  return findings.sort((a, b) => severityRank(b.severity) - severityRank(a.severity) || a.id.localeCompare(b.id) || a.location.url.localeCompare(b.location.url));
}

export async function runScan(run: RunOptions): Promise<ScanResult> {
  const startedAt = new Date();
  const started = performance.now();
  const checks = run.checks ?? CHECKS;
  const options: ScanOptions = { safe: true, destructive: false, ...run.options };
  if (options.destructive) options.safe = false;
  const incompleteChecks: string[] = [];
  let discovered: { endpoints: Endpoint[]; observed: ScanResponse[] };
  try {
    discovered = await discover(run.target, run.http, run.logger);
  } catch (error) {
    if (error instanceof BudgetExhaustedError || error instanceof ScanRequestError) throw new ScanError((error as Error).message, { cause: error });
    throw error;
  }
  const ctx = { target: run.target, options, http: run.http, logger: run.logger, ...discovered };
  const findings: Finding[] = [];
  for (const check of checks) {
    try {
      findings.push(...(await check.run(ctx)));
    } catch (error) {
      if (!(error instanceof BudgetExhaustedError) && !(error instanceof ScanRequestError)) throw error;
      // A check that cannot finish says so in the stats; it never reports a guess.
      run.logger.warn(`check ${check.id} stopped: ${(error as Error).message}`);
      incompleteChecks.push(check.id);
    }
  }
  sortFindings(findings);
  const bySeverity = Object.fromEntries(SEVERITIES.map((s) => [s, findings.filter((f) => f.severity === s).length])) as Record<Severity, number>;
  return {
    target: run.target.href,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    findings,
    checks,
    stats: { requests: run.http.sent, budget: run.http.budget, durationMs: Math.round(performance.now() - started), endpoints: discovered.endpoints.length, incompleteChecks, bySeverity },
  };
}
