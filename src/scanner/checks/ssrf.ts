import { randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { findingFrom } from '../finding.js';
import type { ScanResponse } from '../http.js';
import { propertiesOf } from '../openapi.js';
import type { Check, Endpoint, Finding, ScanContext } from '../types.js';
import { as, bodyFor, createdId, is2xx, isLoopback, jsonHeaders } from './authz-common.js';

/**
 * Server-side request forgery through URL parameters, proven by a canary: an HTTP server the
 * scanner starts on 127.0.0.1 (an ephemeral port, a random token in the path, one path per probe).
 * Query parameters (and, with --destructive, JSON body properties) that take a URL — format uri/url,
 * or named url, callback, webhook, redirect, image, link, feed, src, target… — get the canary's URL;
 * a request arriving at the canary with the probe's token is the finding. The hit is awaited on an
 * event, for at most CANARY_WAIT_MS after the last probe, never polled.
 *
 * Limitation: the canary listens on the scanner's loopback, which only a target on the same host can
 * reach; for any other target the check is skipped (a public canary would need a server on the
 * Internet, which a local scan does not have).
 */

/** Probes (requests) per scan. */
export const MAX_PROBES = 6;
/** How long the canary waits for hits after the last probe (a target may fetch after it answers). */
export const CANARY_WAIT_MS = 3000;
const URL_NAME = /(url|uri|callback|webhook|redirect|image|link|feed|src|target)$/i;
const URL_FORMATS = new Set(['uri', 'url', 'uri-reference', 'iri', 'iri-reference']);

export interface CanaryHit {
  method: string;
  path: string;
  from: string;
  userAgent: string | undefined;
  at: number;
}

export interface Canary {
  /** The URL probe `n` sends. */
  url(n: number): string;
  readonly hits: ReadonlyMap<number, CanaryHit>;
  /** Resolves when every probe in `ns` has a hit, or after `ms`. */
  waitFor(ns: readonly number[], ms: number): Promise<void>;
  close(): Promise<void>;
}

export async function startCanary(): Promise<Canary> {
  const token = randomBytes(16).toString('hex');
  const hits = new Map<number, CanaryHit>();
  const events = new EventEmitter();
  const path = new RegExp(`^/${token}/(\\d+)(?:[/?#]|$)`);
  const server = createServer((req, res) => {
    const m = path.exec(req.url ?? '');
    if (m !== null && !hits.has(Number(m[1]))) {
      hits.set(Number(m[1]), { method: req.method ?? '', path: req.url ?? '', from: req.socket.remoteAddress ?? '', userAgent: req.headers['user-agent'], at: performance.now() });
      events.emit('hit');
    }
    req.resume();
    res.writeHead(m === null ? 404 : 200, { 'content-type': 'text/plain' });
    res.end(m === null ? 'not found' : 'rampart-scan canary');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: (n) => `http://127.0.0.1:${port}/${token}/${n}`,
    hits,
    waitFor: (ns, ms) =>
      new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          events.off('hit', check);
          resolve();
        };
        const check = () => {
          if (ns.every((n) => hits.has(n))) done();
        };
        const timer = setTimeout(done, ms);
        events.on('hit', check);
        check();
      }),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface Probe {
  n: number;
  endpoint: Endpoint;
  in: 'query' | 'body';
  name: string;
  res?: ScanResponse | undefined;
  sentAt?: number | undefined;
}

const takesUrl = (name: string, schema: Record<string, unknown> | undefined) => URL_NAME.test(name) || URL_FORMATS.has(String(schema?.format ?? ''));

function candidates(ctx: ScanContext): { query: Omit<Probe, 'n'>[]; body: Omit<Probe, 'n'>[] } {
  const query: Omit<Probe, 'n'>[] = [];
  const body: Omit<Probe, 'n'>[] = [];
  for (const e of ctx.endpoints) {
    if (e.method === 'GET') {
      const names = e.from === 'openapi' ? e.parameters.filter((p) => p.in === 'query' && takesUrl(p.name, p.schema)).map((p) => p.name) : [...e.url.searchParams.keys()].filter((k) => URL_NAME.test(k));
      for (const name of new Set(names)) query.push({ endpoint: e, in: 'query', name });
    } else if (e.from === 'openapi' && ['POST', 'PUT', 'PATCH'].includes(e.method) && e.requestBody?.mediaType.includes('json') === true) {
      for (const [name, schema] of Object.entries(propertiesOf(e.requestBody.schema))) {
        const type = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type];
        if (schema.readOnly !== true && type.includes('string') && takesUrl(name, schema)) body.push({ endpoint: e, in: 'body', name });
      }
    }
  }
  return { query, body };
}

async function send(ctx: ScanContext, probe: Probe, url: string): Promise<void> {
  const e = probe.endpoint;
  const a = ctx.identities.a;
  probe.sentAt = performance.now();
  if (probe.in === 'query') {
    const target = new URL(e.url.href);
    target.searchParams.set(probe.name, url);
    probe.res = await ctx.http.send({ url: target, headers: as(a) });
    return;
  }
  probe.res = await ctx.http.send({ method: e.method, url: e.url, headers: jsonHeaders(a), body: JSON.stringify(bodyFor(e.requestBody?.schema, { [probe.name]: url })) });
  // A POST that created something (a webhook, an import): deleted again when the document says how.
  if (e.method !== 'POST' || !is2xx(probe.res)) return;
  const item = ctx.endpoints.find((x) => x.method === 'DELETE' && x.template.startsWith(`${e.template}/{`) && /^\/\{[^{}/]+\}$/.test(x.template.slice(e.template.length)));
  const parameter = item === undefined ? undefined : item.template.slice(e.template.length + 2, -1);
  const id = parameter === undefined ? undefined : createdId(probe.res, parameter);
  if (item === undefined || id === undefined) {
    ctx.logger.warn(`ssrf: ${e.method} ${e.template} created something the scan cannot delete (no DELETE ${e.template}/{id} or no id in the answer)`);
    return;
  }
  const target = new URL(e.url.href);
  target.pathname = `${target.pathname.replace(/\/+$/, '')}/${encodeURIComponent(id)}`;
  await ctx.http.send({ method: 'DELETE', url: target, headers: as(a) });
}

export const ssrfCheck: Check = {
  id: 'ssrf',
  title: 'Server-side request forgery',
  owasp: 'API7:2023',
  description:
    `Puts the URL of a canary server it runs on 127.0.0.1 into up to ${MAX_PROBES} URL-taking parameters (query; JSON body properties with --destructive) and waits up to ${CANARY_WAIT_MS / 1000} s ` +
    'for the target to request it: a hit with the probe\'s token is a finding. Only for a target on the scanner\'s own host (the canary is on loopback).',
  async run(ctx) {
    if (!isLoopback(ctx.target.hostname)) {
      ctx.skip('ssrf', `the canary listens on the scanner's loopback (127.0.0.1), which ${ctx.target.hostname} cannot reach: only targets on this host are tested`);
      return [];
    }
    const { query, body } = candidates(ctx);
    if (!ctx.options.destructive && body.length > 0) ctx.skip('ssrf', 'URL-taking JSON body properties are probed only with --destructive (the requests write)');
    const probes: Probe[] = [...query, ...(ctx.options.destructive ? body : [])].slice(0, MAX_PROBES).map((p, n) => ({ ...p, n }));
    if (probes.length === 0) return [];
    const canary = await startCanary();
    try {
      for (const probe of probes) await send(ctx, probe, canary.url(probe.n));
      await canary.waitFor(probes.map((p) => p.n), CANARY_WAIT_MS);
      const findings = new Map<string, Finding>();
      for (const probe of probes) {
        const hit = canary.hits.get(probe.n);
        const key = `${probe.endpoint.method} ${probe.endpoint.template}`;
        if (hit === undefined || probe.res === undefined || findings.has(key)) continue;
        const after = Math.max(0, Math.round(hit.at - probe.sentAt!));
        findings.set(key, findingFrom('ssrf', probe.res, {
          id: 'ssrf.url-parameter',
          title: `Server-side request forgery through ${probe.in === 'query' ? 'query parameter' : 'body property'} ${probe.name} (${key})`,
          severity: 'high',
          confidence: 'high',
          owasp: 'API7:2023',
          detail:
            `The ${probe.in === 'query' ? 'query parameter' : 'JSON body property'} ${probe.name} was set to the scanner's canary URL; the canary received ${hit.method} ${hit.path.replace(/\/[0-9a-f]{32}\//, '/<token>/')} ` +
            `from ${hit.from} (user-agent: ${hit.userAgent ?? 'none'}) ${after} ms after the request was sent, which answered ${probe.res.status}. The server fetches URLs its clients choose.`,
          remediation:
            'Fetch only from an allowlist of hosts (compared after resolving, refusing private, loopback and link-local addresses, re-checked on every redirect), ' +
            'or take an identifier instead of a URL; run fetches from a network segment that cannot reach internal services or cloud metadata.',
        }, probe.endpoint));
      }
      return [...findings.values()];
    } finally {
      await canary.close();
    }
  },
};
