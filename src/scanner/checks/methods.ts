import { findingFrom } from '../finding.js';
import { firstHeader, type ScanResponse } from '../http.js';
import type { Check, Endpoint, Finding, ScanContext } from '../types.js';
import { isThrottled } from '../throttle.js';
import { as, exchange, is2xx, marker, NO_DOCUMENT, sibling, undecided } from './authz-common.js';

/**
 * Dangerous HTTP methods. TRACE on the base URL (a safe method, RFC 9110 §9.3.8) with a marker
 * header: an answer that echoes the header is the finding (cross-site tracing; it also shows what
 * proxies add, cookies included). Resources the document declares with GET only: in safe mode an
 * OPTIONS request, whose `Allow` listing a write is worth a low finding (the server has a write
 * route the document does not show); with --destructive the writes themselves — PUT sending back
 * what GET returned, then DELETE — where a 2XX (that a random sibling path does not also get) is
 * the finding.
 */

/** GET-only resources asked with OPTIONS per scan. */
export const MAX_READ_ONLY = 8;
/** Of those, resources written to with --destructive (GET, PUT, DELETE and one control each). */
export const MAX_WRITTEN = 3;
export const TRACE_HEADER = 'x-rampart-scan-trace';
const WRITE_METHODS = ['PUT', 'POST', 'PATCH', 'DELETE'];
const NOT_METHODS = new Set(['HEAD', 'OPTIONS', 'TRACE']);

async function trace(ctx: ScanContext): Promise<Finding | undefined> {
  const token = marker();
  const res = await ctx.http.send({ method: 'TRACE', url: ctx.target, headers: { [TRACE_HEADER]: token } });
  if (!is2xx(res) || !res.body.includes(token)) return undefined;
  return findingFrom('methods', res, {
    id: 'methods.trace',
    title: 'TRACE is enabled and echoes the request',
    severity: 'medium',
    confidence: 'high',
    owasp: 'API8:2023',
    detail: `TRACE ${new URL(res.request.url).pathname} answered ${res.status} with the request echoed, the scanner's ${TRACE_HEADER} header included: a script that can send TRACE reads the request headers, cookies and credentials included (cross-site tracing), and the echo shows what proxies in between add.`,
    remediation: 'Refuse TRACE (and TRACK) with 405 at the gateway or web server (Apache: TraceEnable off; nginx refuses it by default); an API has no use for it.',
  });
}

interface ReadOnly {
  endpoint: Endpoint;
  options?: ScanResponse | undefined;
  /** Writes `Allow` lists. */
  advertised: string[];
}

/** One GET endpoint per path template the document declares with no other method. */
function readOnlyResources(endpoints: readonly Endpoint[]): Endpoint[] {
  const methods = new Map<string, Set<string>>();
  for (const e of endpoints) if (!NOT_METHODS.has(e.method)) methods.set(e.template, (methods.get(e.template) ?? new Set()).add(e.method));
  const out = endpoints.filter((e) => e.from === 'openapi' && e.method === 'GET' && methods.get(e.template)?.size === 1);
  // Concrete paths (no parameter filled with a sample value) first: they are likelier to exist.
  return [...out.filter((e) => !e.template.includes('{')), ...out.filter((e) => e.template.includes('{'))];
}

/** The methods `Allow` lists (none on a throttled answer: it says nothing about the resource). */
function allowOf(res: ScanResponse): string[] {
  if (isThrottled(res)) return [];
  return (firstHeader(res.headers, 'allow') ?? '').split(',').map((m) => m.trim().toUpperCase()).filter((m) => m !== '');
}

async function writeTo(ctx: ScanContext, r: ReadOnly): Promise<Finding | undefined> {
  const a = ctx.identities.a;
  const e = r.endpoint;
  const current = await ctx.http.send({ url: e.url, headers: as(a) });
  // Only what can be read is written to, and PUT sends back exactly that.
  if (undecided(ctx, 'methods', `methods.write-on-read-only on ${e.template}`, current) || !is2xx(current)) return undefined;
  const type = firstHeader(current.headers, 'content-type') ?? 'application/json';
  for (const method of ['PUT', 'DELETE']) {
    const body = method === 'PUT' ? current.body : undefined;
    const headers = method === 'PUT' ? as(a, { 'content-type': type }) : as(a);
    const res = await ctx.http.send({ method, url: e.url, headers, body });
    if (undecided(ctx, 'methods', `methods.write-on-read-only on ${e.template}`, res) || !is2xx(res)) continue;
    const control = await ctx.http.send({ method, url: sibling(e.url), headers, body });
    // A limiter's 429 on the sibling does not show that only this resource takes the write.
    if (undecided(ctx, 'methods', `methods.write-on-read-only on ${e.template}`, control)) return undefined;
    if (is2xx(control)) {
      ctx.logger.debug(`methods: ${method} answers 2XX on ${e.template} and on a random path (${exchange(control)}): a catch-all, not judged`);
      return undefined;
    }
    if (method === 'DELETE') await putBack(ctx, e, current, type);
    return findingFrom('methods', res, {
      id: 'methods.write-on-read-only',
      title: `${method} accepted on a read-only resource (${e.template})`,
      severity: 'medium',
      confidence: 'high',
      owasp: 'API8:2023',
      detail:
        `The document declares ${e.template} with GET only, yet ${exchange(res)}${r.advertised.length > 0 ? ` (Allow: ${r.advertised.join(', ')})` : ''}; ` +
        `the same ${method} on a random sibling path got ${control.status}. An undocumented write route is one nobody reviews or tests.`,
      remediation: 'Route only the methods the resource supports and answer 405 with an Allow header for the others; keep the document and the routes in step (validate requests against the document at the gateway).',
    }, e);
  }
  return undefined;
}

/** After a DELETE that went through: best effort to put the representation back (the API refused PUT, most likely). */
async function putBack(ctx: ScanContext, e: Endpoint, current: ScanResponse, type: string): Promise<void> {
  const after = await ctx.http.send({ url: e.url, headers: as(ctx.identities.a) });
  if (is2xx(after) && after.body === current.body) return;
  ctx.logger.warn(`methods: DELETE ${e.url.pathname} went through and the resource changed (${exchange(after)}); its representation before was ${type}, ${current.body.length} bytes`);
}

export const methodsCheck: Check = {
  id: 'methods',
  title: 'Dangerous HTTP methods',
  owasp: 'API8:2023',
  description:
    `TRACE on the base URL with a marker header (echoed: a finding). With a document: OPTIONS on up to ${MAX_READ_ONLY} resources declared GET-only (Allow listing a write: low); ` +
    `with --destructive PUT (what GET returned) and DELETE on up to ${MAX_WRITTEN} of them, a 2XX not also given to a random sibling path being the finding.`,
  async run(ctx) {
    const findings: Finding[] = [];
    const traced = await trace(ctx);
    if (traced !== undefined) findings.push(traced);
    if (ctx.document === undefined) {
      ctx.skip('methods', `write-on-read-only ${NO_DOCUMENT} to know which resources are read-only`);
      return findings;
    }
    const resources: ReadOnly[] = [];
    for (const endpoint of readOnlyResources(ctx.endpoints).slice(0, MAX_READ_ONLY)) {
      const options = await ctx.http.send({ method: 'OPTIONS', url: endpoint.url, headers: as(ctx.identities.a) });
      const advertised = allowOf(options).filter((m) => WRITE_METHODS.includes(m));
      resources.push({ endpoint, options, advertised });
      if (advertised.length === 0) continue;
      findings.push(
        findingFrom('methods', options, {
          id: 'methods.write-advertised',
          title: `Allow lists writes on a read-only resource (${endpoint.template}: ${advertised.join(', ')})`,
          severity: 'low',
          confidence: 'medium',
          owasp: 'API8:2023',
          detail:
            `The document declares ${endpoint.template} with GET only; OPTIONS answered ${options.status} with Allow: ${allowOf(options).join(', ')}. ` +
            (ctx.options.destructive ? 'The writes tried were not accepted (or not tried: beyond the bound).' : 'The write was not tried (safe mode): run with --destructive to find out whether it is accepted.'),
          remediation: 'Remove the write routes the document does not declare, or declare (and authorize) them; answer 405 for the others.',
        }, endpoint),
      );
    }
    if (!ctx.options.destructive) return findings;
    // A write Allow admits comes first, then resources that gave no Allow; one whose Allow excludes writes is taken at its word last.
    const order = (r: ReadOnly) => (r.advertised.length > 0 ? 0 : allowOf(r.options!).length === 0 ? 1 : 2);
    const ordered = resources.map((r, i) => ({ r, i })).sort((x, y) => order(x.r) - order(y.r) || x.i - y.i).map((x) => x.r);
    for (const r of ordered.slice(0, MAX_WRITTEN)) {
      const f = await writeTo(ctx, r);
      if (f === undefined) continue;
      // The write accepted says more than the Allow header that announced it.
      const advertised = findings.findIndex((x) => x.id === 'methods.write-advertised' && x.operation?.template === r.endpoint.template);
      if (advertised >= 0) findings.splice(advertised, 1);
      findings.push(f);
    }
    return findings;
  },
};
