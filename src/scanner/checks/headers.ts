import { findingFrom } from '../finding.js';
import { isThrottled } from '../throttle.js';
import { firstHeader, type ScanResponse } from '../http.js';
import { severityRank, type Check, type Finding, type Severity } from '../types.js';

/**
 * Security headers, judged on every response the crawl saw (any status code: a 404 or a 500 is
 * served to browsers too) and per content type: what only protects an HTML page (CSP, frame
 * protection) is not demanded of a JSON answer. One finding per host lists every missing header.
 * Strict-Transport-Security is judged by the transport check (missing and too short).
 */

type Kind = 'json' | 'html' | 'other';

interface Requirement {
  header: string;
  /** What a compliant value looks like, for the finding's text. */
  expected: string;
  severity: Severity;
  applies(kind: Kind, res: ScanResponse): boolean;
  present(res: ScanResponse): boolean;
}

const REQUIREMENTS: readonly Requirement[] = [
  {
    header: 'X-Content-Type-Options',
    expected: 'nosniff',
    severity: 'low',
    applies: (_kind, res) => firstHeader(res.headers, 'content-type') !== undefined,
    present: (res) => firstHeader(res.headers, 'x-content-type-options')?.trim().toLowerCase() === 'nosniff',
  },
  {
    header: 'Content-Security-Policy',
    expected: "a policy, at least default-src 'self'",
    severity: 'medium',
    applies: (kind) => kind === 'html',
    present: (res) => (firstHeader(res.headers, 'content-security-policy') ?? '').trim() !== '',
  },
  {
    header: 'X-Frame-Options',
    expected: "DENY or SAMEORIGIN (or CSP frame-ancestors)",
    severity: 'low',
    applies: (kind) => kind === 'html',
    present: (res) =>
      /^(deny|sameorigin)$/i.test(firstHeader(res.headers, 'x-frame-options')?.trim() ?? '') ||
      /(^|;)\s*frame-ancestors\s/i.test(firstHeader(res.headers, 'content-security-policy') ?? ''),
  },
];

export function contentKind(res: ScanResponse): Kind {
  const type = (firstHeader(res.headers, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json' || type.endsWith('+json')) return 'json';
  if (type === 'text/html' || type === 'application/xhtml+xml') return 'html';
  return 'other';
}

function where(res: ScanResponse): string {
  const url = new URL(res.request.url);
  return `${res.request.method} ${url.pathname} (${res.status})`;
}

/** At most a few places per header: the finding is about the host, not an inventory. */
const MAX_LISTED = 5;
function listed(places: string[]): string {
  return places.length <= MAX_LISTED ? places.join(', ') : `${places.slice(0, MAX_LISTED).join(', ')} and ${places.length - MAX_LISTED} more`;
}

function groupByHost(responses: readonly ScanResponse[]): Map<string, ScanResponse[]> {
  const hosts = new Map<string, ScanResponse[]>();
  for (const res of responses) {
    const host = new URL(res.request.url).host;
    hosts.set(host, [...(hosts.get(host) ?? []), res]);
  }
  return hosts;
}

function missingHeaders(host: string, responses: readonly ScanResponse[]): Finding | undefined {
  const missing = new Map<Requirement, ScanResponse[]>();
  for (const res of responses) {
    const kind = contentKind(res);
    for (const req of REQUIREMENTS) {
      if (req.applies(kind, res) && !req.present(res)) missing.set(req, [...(missing.get(req) ?? []), res]);
    }
  }
  if (missing.size === 0) return undefined;
  const reqs = [...missing.keys()];
  const severity = reqs.map((r) => r.severity).reduce((a, b) => (severityRank(b) > severityRank(a) ? b : a));
  const first = missing.get(reqs[0]!)![0]!;
  const lines = reqs.map((r) => `${r.header} (expected ${r.expected}) missing on ${listed(missing.get(r)!.map(where))}`);
  return findingFrom('headers', first, {
    id: 'headers.missing',
    title: `Security headers missing on ${host}: ${reqs.map((r) => r.header).join(', ')}`,
    severity,
    confidence: 'high',
    owasp: 'API8:2023',
    detail: lines.join('; '),
    remediation:
      'Send these headers on every response, errors included: X-Content-Type-Options: nosniff everywhere, ' +
      "and on HTML pages a Content-Security-Policy (with frame-ancestors 'none' or X-Frame-Options: DENY). A gateway's response phase is the one place to set them.",
  });
}

function versionDisclosure(host: string, responses: readonly ScanResponse[]): Finding | undefined {
  const seen = new Map<string, ScanResponse>();
  for (const res of responses) {
    const server = firstHeader(res.headers, 'server');
    if (server !== undefined && /\d/.test(server)) seen.set(`Server: ${server}`, seen.get(`Server: ${server}`) ?? res);
    const poweredBy = firstHeader(res.headers, 'x-powered-by');
    if (poweredBy !== undefined) seen.set(`X-Powered-By: ${poweredBy}`, seen.get(`X-Powered-By: ${poweredBy}`) ?? res);
  }
  if (seen.size === 0) return undefined;
  const [, first] = [...seen.entries()][0]!;
  const withVersion = [...seen.keys()].some((h) => /\d/.test(h));
  return findingFrom('headers', first, {
    id: 'headers.version-disclosure',
    title: `Server software disclosed by ${host}`,
    severity: 'low',
    confidence: withVersion ? 'high' : 'medium',
    owasp: 'API8:2023',
    detail: `Response headers name the software${withVersion ? ' and its version' : ''}: ${[...seen.keys()].join('; ')}`,
    remediation: 'Remove X-Powered-By and the version from Server (or Server altogether): they tell an attacker which known vulnerabilities to try.',
  });
}

export const headersCheck: Check = {
  id: 'headers',
  title: 'Security headers',
  owasp: 'API8:2023',
  description:
    'Judges the headers of every response seen (any status), per content type: X-Content-Type-Options: nosniff, CSP and frame protection on HTML (HSTS: the transport check); Server/X-Powered-By disclosing software versions. One finding per host.',
  async run(ctx) {
    const findings: Finding[] = [];
    // Throttled answers (429, 503) often come from another layer (a limiter, a CDN): not judged.
    for (const [host, responses] of groupByHost(ctx.observed.filter((r) => !isThrottled(r)))) {
      const missing = missingHeaders(host, responses);
      if (missing !== undefined) findings.push(missing);
      const disclosed = versionDisclosure(host, responses);
      if (disclosed !== undefined) findings.push(disclosed);
    }
    return findings;
  },
};
