import { findingFrom } from '../finding.js';
import { firstHeader, type ScanResponse } from '../http.js';
import { isThrottled } from '../throttle.js';
import { severityRank, type Check, type Endpoint, type Finding, type ScanContext, type Severity } from '../types.js';
import { as, exchange, is2xx, marker, NO_DOCUMENT, undecided } from './authz-common.js';

/**
 * Improper inventory: what answers but is not in the inventory. Old versions — the document's
 * paths carry a version segment (`/v2`, `/api/v2`) and the same operation still answers under a
 * lower version or none, while the document does not declare it; a made-up version (v102) must not
 * answer, or the server ignores the segment and nothing is proven. Debug endpoints — a fixed list
 * of well-known paths, each recognised by what it answers (a signature), never by a 200 alone: a
 * single-page app answers 200 to everything, so the answer must also differ from a random path's.
 */

/** Versioned GET operations tried per scan. */
export const MAX_VERSIONED = 2;
/** Lower versions (and the unversioned path) tried per operation. */
export const MAX_ALTERNATIVES = 3;

interface DebugPath {
  path: string;
  what: string;
  severity: Severity;
  matches(res: ScanResponse): boolean;
}

const text = (res: ScanResponse) => res.body;

/**
 * Well-known debug and admin endpoints (at the origin's root, where frameworks mount them).
 * Left out on purpose: /actuator/heapdump (GET makes the server write a heap dump: slow and
 * gigabytes), GraphQL introspection (often intended on a public GraphQL API; not a REST question).
 */
export const DEBUG_PATHS: readonly DebugPath[] = [
  { path: '/.env', what: 'an environment file (secrets, database URLs)', severity: 'high', matches: (r) => (text(r).match(/^[A-Z][A-Z0-9_]*=.*$/gm) ?? []).length >= 2 && !/<[a-z!]/i.test(text(r).slice(0, 512)) },
  { path: '/.git/config', what: 'the Git repository (source code and history)', severity: 'high', matches: (r) => /^\s*\[core\]/m.test(text(r)) && /repositoryformatversion/.test(text(r)) },
  { path: '/actuator/env', what: 'the Spring Boot actuator environment (configuration, often secrets)', severity: 'high', matches: (r) => /"(propertySources|activeProfiles)"\s*:/.test(text(r)) },
  { path: '/phpinfo.php', what: 'phpinfo() (configuration and environment variables)', severity: 'high', matches: (r) => /phpinfo\(\)/.test(text(r)) && /PHP Version/i.test(text(r)) },
  { path: '/console', what: 'the Werkzeug debugger console (code execution)', severity: 'high', matches: (r) => /werkzeug/i.test(text(r)) && /Interactive Console|__debugger__|EVALEX/.test(text(r)) },
  { path: '/h2-console/', what: 'the H2 database console', severity: 'high', matches: (r) => /H2 Console/i.test(text(r)) },
  { path: '/debug/vars', what: 'Go expvar (command line, memory statistics)', severity: 'medium', matches: (r) => /"cmdline"\s*:/.test(text(r)) && /"memstats"\s*:/.test(text(r)) },
  { path: '/debug/pprof/', what: 'Go pprof profiles (CPU profiles on demand: a denial of service, and memory contents)', severity: 'medium', matches: (r) => /Types of profiles available|\/debug\/pprof\/goroutine/.test(text(r)) },
  { path: '/server-status', what: 'Apache server status (clients, requested URLs)', severity: 'medium', matches: (r) => /Apache Server Status for/i.test(text(r)) },
  { path: '/elmah.axd', what: 'the ELMAH error log (stack traces, request data)', severity: 'medium', matches: (r) => /Error Log for/i.test(text(r)) && /ELMAH/i.test(text(r)) },
  { path: '/trace.axd', what: 'ASP.NET tracing (requests with their headers and cookies)', severity: 'medium', matches: (r) => /Application Trace/i.test(text(r)) && /Requests to this Application|trace\.axd/i.test(text(r)) },
  { path: '/_profiler/', what: 'the Symfony profiler (requests, configuration)', severity: 'medium', matches: (r) => /Symfony Profiler/i.test(text(r)) },
];

async function debugEndpoints(ctx: ScanContext): Promise<Finding | undefined> {
  const at = (path: string) => new URL(path, ctx.target.origin);
  const control = await ctx.http.send({ url: at(`/${marker()}`) });
  // Without the control's answer a catch-all that happens to match a signature cannot be ruled out.
  if (undecided(ctx, 'inventory', 'inventory.debug-endpoint', control)) return undefined;
  const found: { d: DebugPath; res: ScanResponse }[] = [];
  for (const d of DEBUG_PATHS) {
    const res = await ctx.http.send({ url: at(d.path) });
    // A signature, and not what any path gets (a catch-all that happens to match).
    if (res.status === 200 && !isThrottled(res) && d.matches(res) && !(control.status === 200 && (control.body === res.body || d.matches(control)))) found.push({ d, res });
  }
  if (found.length === 0) return undefined;
  const worst = found.reduce((x, y) => (severityRank(y.d.severity) > severityRank(x.d.severity) ? y : x));
  return findingFrom('inventory', worst.res, {
    id: 'inventory.debug-endpoint',
    title: `Debug endpoint${found.length > 1 ? 's' : ''} exposed on ${ctx.target.host}: ${found.map((f) => f.d.path).join(', ')}`,
    severity: worst.d.severity,
    confidence: 'high',
    owasp: 'API9:2023',
    detail: `${found.map((f) => `${f.d.path} answers ${f.d.what}`).join('; ')}. Recognised by the content, not the status: a random path got ${control.status}.`,
    remediation: 'Remove debug handlers and files from production builds, or bind them to a separate, internal listener; never serve .env or .git from a web root.',
  });
}

const VERSION = /^v(\d+)$/i;

/** The documented URL path of an operation as a pattern (path parameters match one segment). */
function patternOf(e: Endpoint): RegExp {
  let filled = e.template;
  for (const p of e.parameters.filter((x) => x.in === 'path')) filled = filled.replaceAll(`{${p.name}}`, encodeURIComponent(p.value));
  const prefix = e.url.pathname.endsWith(filled) ? e.url.pathname.slice(0, e.url.pathname.length - filled.length) : '';
  const escaped = `${prefix}${e.template}`.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^{}/]+\}/g, '[^/]+');
  return new RegExp(`^${escaped}/?$`);
}

function withVersion(url: URL, index: number, version: string | undefined): URL {
  const u = new URL(url.href);
  const segments = u.pathname.split('/');
  if (version === undefined) segments.splice(index, 1);
  else segments[index] = version;
  u.pathname = segments.join('/');
  return u;
}

const kindOf = (res: ScanResponse) => (firstHeader(res.headers, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();

async function oldVersions(ctx: ScanContext): Promise<Finding | undefined> {
  const documented = ctx.endpoints.filter((e) => e.from === 'openapi').map(patternOf);
  const isDocumented = (url: URL) => documented.some((p) => p.test(url.pathname));
  const versioned = ctx.endpoints
    .filter((e) => e.from === 'openapi' && e.method === 'GET' && e.url.pathname.split('/').some((s) => VERSION.test(s) && Number(VERSION.exec(s)![1]) >= 1))
    .sort((x, y) => Number(x.template.includes('{')) - Number(y.template.includes('{')));
  const a = ctx.identities.a;
  for (const e of versioned.slice(0, MAX_VERSIONED)) {
    const segments = e.url.pathname.split('/');
    const index = segments.findIndex((s) => VERSION.test(s));
    const n = Number(VERSION.exec(segments[index]!)![1]);
    const current = await ctx.http.send({ url: e.url, headers: as(a) });
    if (undecided(ctx, 'inventory', `inventory.old-version on ${e.template}`, current) || !is2xx(current)) continue;
    const control = await ctx.http.send({ url: withVersion(e.url, index, `v${n + 100}`), headers: as(a) });
    // A limiter's 429 to the made-up version does not show that the segment is routed on.
    if (undecided(ctx, 'inventory', `inventory.old-version on ${e.template}`, control)) continue;
    if (is2xx(control)) {
      ctx.logger.debug(`inventory: ${exchange(control)}: a made-up version answers too, the version segment is not routed on`);
      continue;
    }
    const lower = Array.from({ length: Math.min(n, MAX_ALTERNATIVES - 1) }, (_, i) => `v${n - 1 - i}`);
    const alternatives = [...lower, undefined].map((v) => withVersion(e.url, index, v)).filter((u) => !isDocumented(u));
    for (const url of alternatives) {
      const res = await ctx.http.send({ url, headers: as(a) });
      if (undecided(ctx, 'inventory', `inventory.old-version on ${e.template}`, res) || !is2xx(res) || kindOf(res) !== kindOf(current)) continue;
      // An old version that needs no credentials where the documented one does is the worse case.
      const anonymous = e.requiresAuth === true && a !== undefined ? await ctx.http.send({ url, headers: as(undefined) }) : undefined;
      // A throttled anonymous answer proves nothing more: the low finding, which the rest does prove.
      const open = anonymous !== undefined && is2xx(anonymous) && !isThrottled(anonymous);
      return findingFrom('inventory', open ? anonymous : res, {
        id: 'inventory.old-version',
        title: `Undocumented old API version answers (${url.pathname}${open ? ', without credentials' : ''})`,
        severity: open ? 'medium' : 'low',
        confidence: 'medium',
        owasp: 'API9:2023',
        detail:
          `The document declares ${e.url.pathname}; ${url.pathname}, which it does not declare, answers ${res.status} (${kindOf(res) || 'no content type'}, as the documented one does) ` +
          `while a made-up version (${new URL(control.request.url).pathname}) gets ${control.status}.` +
          (open ? ` It answers ${anonymous.status} without credentials, which the documented operation requires.` : ''),
        remediation: 'Retire old versions (answer 410 Gone, or remove the routes) or keep them in the inventory with the same authentication, authorization and fixes as the current one; announce retirement with Deprecation and Sunset headers.',
      }, e);
    }
  }
  return undefined;
}

export const inventoryCheck: Check = {
  id: 'inventory',
  title: 'Improper inventory: old versions and debug endpoints',
  owasp: 'API9:2023',
  description:
    `GETs ${DEBUG_PATHS.length} well-known debug paths (${DEBUG_PATHS.map((d) => d.path).join(', ')}) and a random control path, judged by content signatures. ` +
    `With a document whose paths carry a version (/v2): the same operation under lower versions and none (up to ${MAX_VERSIONED} operations), a made-up version as the control.`,
  async run(ctx) {
    const findings: Finding[] = [];
    const debug = await debugEndpoints(ctx);
    if (debug !== undefined) findings.push(debug);
    if (ctx.document === undefined) {
      ctx.skip('inventory', `old-version ${NO_DOCUMENT} to know which versions are documented`);
      return findings;
    }
    const old = await oldVersions(ctx);
    if (old !== undefined) findings.push(old);
    return findings;
  },
};
