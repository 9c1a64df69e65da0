import { findingFrom } from '../finding.js';
import type { ScanResponse } from '../http.js';
import type { Check, Endpoint, Finding, ScanContext } from '../types.js';
import { anonymousGet, baselineOf, GARBAGE_TOKEN, isApiSuccess, isRefusal, NO_BASELINE, sampleBody, withoutSecret } from './authn-common.js';
import { undecided } from './authz-common.js';

/**
 * Authentication: every operation the OpenAPI document says needs credentials is called without
 * any (reads always, writes only with --destructive); a 2XX answer means it does not. Then caller
 * A's token is sent as a query parameter instead of the Authorization header to the baseline
 * endpoint (which refuses anonymous callers): tokens in URLs end up in logs, caches and Referer.
 */

const CHECK = 'authentication';
/** Operations called anonymously, at most: this many reads, and with --destructive as many writes more. */
export const MAX_ANONYMOUS = 16;
/** Query parameter names tried for the token, in this order; the first accepted one is reported. */
export const TOKEN_PARAMETERS = ['access_token', 'token', 'jwt'] as const;

const READS = new Set(['GET', 'HEAD']);

async function anonymous(ctx: ScanContext, endpoint: Endpoint): Promise<ScanResponse> {
  if (endpoint.method === 'GET') return anonymousGet(ctx, endpoint.url);
  const json = endpoint.requestBody !== undefined && /json/i.test(endpoint.requestBody.mediaType);
  return ctx.http.send({
    method: endpoint.method,
    url: endpoint.url,
    headers: { accept: 'application/json', ...(json ? { 'content-type': endpoint.requestBody!.mediaType } : {}) },
    ...(json ? { body: sampleBody(endpoint) } : {}),
  });
}

async function missing(ctx: ScanContext): Promise<Finding[]> {
  if (ctx.document === undefined) {
    ctx.skip(CHECK, 'auth.missing needs an OpenAPI document (--openapi) that says which operations need credentials');
    return [];
  }
  const protectedOps = ctx.endpoints.filter((e) => e.requiresAuth === true);
  const reads = protectedOps.filter((e) => READS.has(e.method));
  const writes = protectedOps.filter((e) => !READS.has(e.method));
  if (writes.length > 0 && !ctx.options.destructive) ctx.skip(CHECK, `auth.missing: ${writes.length} write operation(s) not called anonymously (only with --destructive)`);
  const probes = [...reads.slice(0, MAX_ANONYMOUS), ...(ctx.options.destructive ? writes.slice(0, MAX_ANONYMOUS) : [])];
  const left = reads.length + (ctx.options.destructive ? writes.length : 0) - probes.length;
  if (left > 0) ctx.skip(CHECK, `auth.missing: ${left} operation(s) not called (at most ${MAX_ANONYMOUS} reads and, with --destructive, ${MAX_ANONYMOUS} writes)`);
  const found: Finding[] = [];
  for (const endpoint of probes) {
    const res = await anonymous(ctx, endpoint);
    if (!isApiSuccess(res)) continue;
    found.push(
      findingFrom(CHECK, res, {
        id: 'auth.missing',
        title: `${endpoint.method} ${endpoint.template} answers without credentials`,
        severity: 'high',
        confidence: 'high',
        owasp: 'API2:2023',
        detail: `The document says ${endpoint.method} ${endpoint.template} needs credentials (security: ${(endpoint.scopes ?? []).length > 0 ? `scopes ${endpoint.scopes!.join(', ')}` : 'every alternative names a scheme'}); called with none it answered ${res.status}.`,
        remediation: 'Authenticate every operation by default and open single ones explicitly (in Rampart: public: true on the route); check that the route really has the authentication policy the document promises.',
      }, endpoint),
    );
  }
  return found;
}

async function tokenInQuery(ctx: ScanContext): Promise<Finding[]> {
  const token = ctx.identities.a?.token;
  if (token === undefined) {
    ctx.skip(CHECK, 'auth.token-in-query needs caller A with a bearer token (--auth or --login)');
    return [];
  }
  const baseline = await baselineOf(ctx);
  if (baseline === undefined) {
    ctx.skip(CHECK, `auth.token-in-query: ${NO_BASELINE}`);
    return [];
  }
  const at = baseline.endpoint;
  const withParam = (name: string, value: string) => {
    const url = new URL(at.url);
    url.searchParams.set(name, value);
    return ctx.http.send({ url, headers: { accept: 'application/json' } });
  };
  for (const name of TOKEN_PARAMETERS) {
    const res = await withParam(name, token);
    if (!isApiSuccess(res)) continue;
    // Accepted: the token's doing only if a garbage value in the same place is refused.
    const control = await withParam(name, GARBAGE_TOKEN);
    if (undecided(ctx, CHECK, `auth.token-in-query (?${name}=)`, control)) return [];
    if (!isRefusal(control)) {
      ctx.skip(CHECK, `auth.token-in-query: no decision, ?${name}= with a garbage value got ${control.status} too`);
      return [];
    }
    const finding = findingFrom(CHECK, res, {
      id: 'auth.token-in-query',
      title: `Access token accepted in the query string (?${name}=)`,
      severity: 'medium',
      confidence: 'high',
      owasp: 'API2:2023',
      detail: `Caller A's token as ?${name}= (no Authorization header) was accepted on ${at.method} ${at.url.pathname} (${res.status}), which refuses an anonymous caller (${baseline.anonymous.status}) and a garbage ?${name}= (${control.status}). URLs are written to access logs, proxy and browser histories and Referer headers.`,
      remediation: 'Take bearer tokens only from the Authorization header (RFC 6750 §2.1) and refuse requests that carry one in the query (Rampart answers 400 RMP_AUTH_INVALID_REQUEST).',
    }, at);
    return [withoutSecret(finding, token)];
  }
  return [];
}

export const authenticationCheck: Check = {
  id: CHECK,
  title: 'Authentication',
  owasp: 'API2:2023',
  description: `Calls up to ${MAX_ANONYMOUS} reads (and with --destructive ${MAX_ANONYMOUS} writes) the OpenAPI document says need credentials without any, and sends caller A's token as ?access_token=, ?token= or ?jwt= instead of the Authorization header to an endpoint that refuses anonymous callers.`,
  async run(ctx) {
    return [...(await missing(ctx)), ...(await tokenInQuery(ctx))];
  },
};
