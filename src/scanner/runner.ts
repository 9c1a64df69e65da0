import { authenticationCheck } from './checks/authentication.js';
import { bolaCheck } from './checks/bola.js';
import { commandInjectionCheck } from './checks/command-injection.js';
import { corsCheck } from './checks/cors.js';
import { functionLevelCheck } from './checks/function-level.js';
import { headersCheck } from './checks/headers.js';
import { inventoryCheck } from './checks/inventory.js';
import { jwtCheck } from './checks/jwt.js';
import { massAssignmentCheck } from './checks/mass-assignment.js';
import { methodsCheck } from './checks/methods.js';
import { nosqlInjectionCheck } from './checks/nosql-injection.js';
import { rateLimitCheck } from './checks/rate-limit.js';
import { redosCheck } from './checks/redos.js';
import { sensitiveDataCheck } from './checks/sensitive-data.js';
import { sqlInjectionCheck } from './checks/sql-injection.js';
import { ssrfCheck } from './checks/ssrf.js';
import { transportCheck } from './checks/transport.js';
import { userEnumerationCheck } from './checks/user-enumeration.js';
import { xxeCheck } from './checks/xxe.js';
import { crawl, looksStateful, TargetUnreachableError, type Discovery } from './crawl.js';
import { redactFindings } from './evidence.js';
import { BudgetExhaustedError, ScanRequestError, type ScanHttpClient } from './http.js';
import { CredentialError, identityFromHeader, logIn, parseAuthHeader, userFieldFor } from './identity.js';
import { DocumentError, loadDocument } from './openapi.js';
import { SEVERITIES, severityRank, type Check, type Finding, type LoginSettings, type ScanContext, type ScanLogger, type ScanOptions, type Severity } from './types.js';

/** Every check, in the order they run (and the order of the SARIF rules). */
export const CHECKS: readonly Check[] = [
  transportCheck,
  headersCheck,
  corsCheck,
  authenticationCheck,
  jwtCheck,
  bolaCheck,
  functionLevelCheck,
  massAssignmentCheck,
  methodsCheck,
  inventoryCheck,
  ssrfCheck,
  sqlInjectionCheck,
  nosqlInjectionCheck,
  commandInjectionCheck,
  xxeCheck,
  redosCheck,
  userEnumerationCheck,
  // It judges every answer so far (discovery and every check before it): keep it near the end.
  sensitiveDataCheck,
  // Last of all: its burst of failed logins spends the login quota of the scan's address, and any
  // check after it that logs in would be refused.
  rateLimitCheck,
];

export interface ScanResult {
  target: string;
  startedAt: string;
  finishedAt: string;
  findings: Finding[];
  checks: readonly Check[];
  /** The OpenAPI document the endpoints came from (`--openapi`), as given. */
  document?: string | undefined;
  stats: ScanStats;
}

export interface ScanStats {
  requests: number;
  /** Of those, the requests of endpoint discovery and login, before the first check. */
  discoveryRequests: number;
  budget: number;
  durationMs: number;
  endpoints: number;
  /** Checks stopped early because the request budget was spent. */
  incompleteChecks: string[];
  /** Checks (or parts of them) not run, and why: a missing identity, no document, not `--destructive`. */
  skipped: { check: string; reason: string }[];
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
  /** `--openapi FILE|URL`: endpoints from the document instead of the crawl. */
  openapi?: string | undefined;
  /** `--auth` / `--auth-b`: a header each (`Authorization: Bearer …`). */
  auth?: string | undefined;
  authB?: string | undefined;
  /** `--login PATH --user U --password P` (and `--user-b`/`--password-b`). */
  login?: { path: string; user: string; password: string; userB?: string | undefined; passwordB?: string | undefined } | undefined;
  /** `--http-url URL`: the plain-HTTP address of the same API (default: port 80 of an https:// target on 443). */
  httpUrl?: URL | undefined;
  /** Called before each check and once at the end (the terminal's progress bar). */
  progress?: (p: Progress) => void;
}

export interface Progress {
  done: number;
  total: number;
  /** The check about to run; undefined at the end. */
  check: string | undefined;
  requests: number;
}

export function sortFindings(findings: Finding[]): Finding[] {
  return findings.sort((a, b) => severityRank(b.severity) - severityRank(a.severity) || a.id.localeCompare(b.id) || a.location.url.localeCompare(b.location.url));
}

/** What the scan itself holds that no report may show: its callers' credentials and what its logins were answered with. */
function scanSecrets(ctx: ScanContext, run: RunOptions): Set<string> {
  const secrets = new Set<string>();
  for (const identity of [ctx.identities.a, ctx.identities.b]) {
    if (identity === undefined) continue;
    for (const value of Object.values(identity.headers)) {
      secrets.add(value);
      // The credential part of `Bearer x`, `Basic x`, and each cookie's value.
      const space = value.indexOf(' ');
      if (space > 0) secrets.add(value.slice(space + 1));
      for (const m of value.matchAll(/=([^;\s]+)/g)) secrets.add(m[1]!);
    }
    if (identity.token !== undefined) secrets.add(identity.token);
  }
  if (run.login !== undefined) {
    secrets.add(run.login.password);
    if (run.login.passwordB !== undefined) secrets.add(run.login.passwordB);
  }
  const loginUrl = ctx.login?.url.href;
  for (const res of run.http.history) {
    if (loginUrl === undefined || res.request.url !== loginUrl || res.status < 200 || res.status > 299) continue;
    for (const value of tokenValues(res.body)) secrets.add(value);
  }
  return secrets;
}

/** The values of token-like properties of a JSON answer (access, refresh and id tokens), one level deep. */
function tokenValues(body: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return [];
  }
  const out: string[] = [];
  const visit = (node: unknown, depth: number): void => {
    if (node === null || typeof node !== 'object' || depth > 2) return;
    for (const [key, value] of Object.entries(node)) {
      // `token_type: Bearer` and `expires_in` are no secrets; credentials are long.
      if (typeof value === 'string' && value.length >= 16 && /token|jwt|secret|session/i.test(key) && !/type|expires/i.test(key)) out.push(value);
      else visit(value, depth + 1);
    }
  };
  visit(parsed, 0);
  return out;
}

/** Documented reads fetched during discovery, at most. */
export const MAX_DISCOVERY_READS = 40;

async function readOperations(run: RunOptions, discovered: Discovery, headers: Record<string, string> | undefined): Promise<void> {
  for (const endpoint of discovered.endpoints.filter((e) => e.method === 'GET').slice(0, MAX_DISCOVERY_READS)) {
    try {
      discovered.observed.push(await run.http.send({ url: endpoint.url, headers }));
    } catch (error) {
      if (error instanceof BudgetExhaustedError) return;
      if (!(error instanceof ScanRequestError)) throw error;
      run.logger.warn(`${endpoint.url.href}: ${error.message}`);
    }
  }
}

/** The document, the identities and the login, checked before any check runs: a bad one ends the scan (exit 2). */
async function prepare(run: RunOptions, options: ScanOptions, skipped: ScanStats['skipped']): Promise<ScanContext> {
  let discovered: Discovery;
  let document: ScanContext['document'];
  if (run.openapi !== undefined) {
    const loaded = await loadDocument(run.openapi, run.target, run.http);
    // The base URL must answer (whatever its status) before anything is sent to operations.
    const first = await run.http.send({ url: run.target, followSameHostRedirects: true });
    // In safe mode, documented GETs whose path says they change state (`/logout`, `…/delete`) are
    // no endpoint: no check sends them (badly built APIs log out or delete on a GET).
    const stateful = options.destructive ? [] : loaded.endpoints.filter((e) => e.method === 'GET' && looksStateful(e.url.pathname));
    for (const e of stateful) skipped.push({ check: 'discovery', reason: `GET ${e.template} looks like it changes state: not sent without --destructive` });
    discovered = { endpoints: loaded.endpoints.filter((e) => !stateful.includes(e)), observed: [first] };
    document = { uri: loaded.uri, version: loaded.doc.version, securitySchemes: loaded.doc.securitySchemes };
  } else {
    discovered = await crawl(run.target, run.http, run.logger);
  }
  const identities: ScanContext['identities'] = {};
  if (run.auth !== undefined) identities.a = identityFromHeader('A', parseAuthHeader('--auth', run.auth));
  if (run.authB !== undefined) identities.b = identityFromHeader('B', parseAuthHeader('--auth-b', run.authB));
  let login: LoginSettings | undefined;
  if (run.login !== undefined) {
    const url = new URL(run.login.path.replace(/^\/+/, ''), run.target.href.endsWith('/') ? run.target : `${run.target.href}/`);
    if (url.origin !== run.target.origin) throw new CredentialError(`--login ${run.login.path} is not on the target's origin`);
    const endpoint = discovered.endpoints.find((e) => e.method === 'POST' && e.url.pathname === url.pathname);
    login = { ...run.login, url, userField: userFieldFor(run.login.user, endpoint) };
    identities.a ??= await logIn(run.http, login, 'A');
    if (login.userB !== undefined && login.passwordB !== undefined) identities.b ??= await logIn(run.http, login, 'B');
  }
  // With a document, each documented read is fetched once (as caller A when there is one): the
  // checks that judge answers (headers, sensitive data) see every operation, not only those
  // another check happened to probe.
  if (document !== undefined) await readOperations(run, discovered, identities.a?.headers);
  return {
    target: run.target,
    options,
    http: run.http,
    logger: run.logger,
    ...discovered,
    document,
    identities,
    login,
    httpUrl: run.httpUrl,
    skip: (check, reason) => {
      if (!skipped.some((s) => s.check === check && s.reason === reason)) skipped.push({ check, reason });
    },
  };
}

export async function runScan(run: RunOptions): Promise<ScanResult> {
  const startedAt = new Date();
  const started = performance.now();
  const checks = run.checks ?? CHECKS;
  const options: ScanOptions = { safe: true, destructive: false, ...run.options };
  if (options.destructive) options.safe = false;
  const incompleteChecks: string[] = [];
  const skipped: ScanStats['skipped'] = [];
  let ctx: ScanContext;
  try {
    ctx = await prepare(run, options, skipped);
  } catch (error) {
    if (error instanceof BudgetExhaustedError || error instanceof ScanRequestError || error instanceof TargetUnreachableError || error instanceof DocumentError || error instanceof CredentialError) {
      throw new ScanError((error as Error).message, { cause: error });
    }
    throw error;
  }
  const discoveryRequests = run.http.sent;
  const findings: Finding[] = [];
  for (const [index, check] of checks.entries()) {
    run.progress?.({ done: index, total: checks.length, check: check.id, requests: run.http.sent });
    if (check.destructive === true && !options.destructive) {
      ctx.skip(check.id, 'sends writes or lockout-triggering bursts: only with --destructive');
      continue;
    }
    try {
      findings.push(...(await check.run(ctx)));
    } catch (error) {
      if (!(error instanceof BudgetExhaustedError) && !(error instanceof ScanRequestError)) throw error;
      // A check that cannot finish says so in the stats; it never reports a guess.
      run.logger.warn(`check ${check.id} stopped: ${(error as Error).message}`);
      incompleteChecks.push(check.id);
    }
  }
  run.progress?.({ done: checks.length, total: checks.length, check: undefined, requests: run.http.sent });
  redactFindings(findings, scanSecrets(ctx, run));
  sortFindings(findings);
  const bySeverity = Object.fromEntries(SEVERITIES.map((s) => [s, findings.filter((f) => f.severity === s).length])) as Record<Severity, number>;
  return {
    target: run.target.href,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    findings,
    checks,
    document: ctx.document?.uri,
    stats: { requests: run.http.sent, discoveryRequests, budget: run.http.budget, durationMs: Math.round(performance.now() - started), endpoints: ctx.endpoints.length, incompleteChecks, skipped, bySeverity },
  };
}
