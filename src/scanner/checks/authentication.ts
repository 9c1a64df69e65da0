import { findingFrom } from '../finding.js';
import { firstHeader, type ScanResponse } from '../http.js';
import { isThrottled } from '../throttle.js';
import type { Check, Confidence, Endpoint, Finding, Identity, ScanContext } from '../types.js';
import { anonymousGet, baselineOf, excerpt, GARBAGE_TOKEN, isApiSuccess, isRefusal, NO_BASELINE, normaliseBody, sampleBody, withoutSecret } from './authn-common.js';
import { exchange, isRecord, parseJson, sibling, undecided } from './authz-common.js';

/**
 * Authentication: every operation the OpenAPI document says needs credentials is called without
 * any (reads always, writes only with --destructive). A 2XX answer is a finding only when it is a
 * real answer: no refusal in its body, like caller A's answer to the same read (same kind of JSON,
 * mostly the same keys), and unlike what a random sibling path gets (a catch-all, one answer to
 * everything). Then caller A's token is sent as a query parameter instead of the Authorization
 * header to the baseline endpoint (which refuses anonymous callers): tokens in URLs end up in logs,
 * caches and Referer.
 */

const CHECK = 'authentication';
/** Operations called anonymously, at most: this many reads, and with --destructive as many writes more. */
export const MAX_ANONYMOUS = 16;
/** More requests per operation answered 2XX anonymously: caller A's answer (unless one was already received) and a random sibling path's. */
export const CONTROLS_PER_OPERATION = 2;
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

/** Words of a refusal, in a body that came with a 2XX status. */
const REFUSAL_WORDS = /\b(unauthori[sz]ed|unauthenticated|not authenticated|authentication (is )?required|login required|not logged in|forbidden|access denied|permission denied|(missing|invalid|expired) (access |bearer |auth )?token|credentials (are )?(required|missing))\b/i;

/** A 2XX whose body says it is a refusal: `{"error": …}`, a 401/403 status or code in it, `ok: false`, or the words of one. */
export function refusalInBody(res: ScanResponse): boolean {
  const body = parseJson(res.body);
  if (isRecord(body)) {
    if ((body.error !== undefined && body.error !== null && body.error !== false && body.error !== '') || (Array.isArray(body.errors) && body.errors.length > 0)) return true;
    if (['status', 'code', 'statusCode', 'status_code'].some((k) => ['401', '403'].includes(String(body[k])))) return true;
    if (body.success === false || body.ok === false || body.authenticated === false) return true;
    return ['message', 'detail', 'title', 'reason', 'msg', 'error_description'].some((k) => typeof body[k] === 'string' && REFUSAL_WORDS.test(body[k]));
  }
  return body === undefined && res.body.length <= 300 && REFUSAL_WORDS.test(res.body);
}

/** What an answer looks like: the kind of JSON value and its keys (an array's: its objects'), else the media type. */
interface Shape {
  kind: string;
  keys: string[];
}

export function shapeOf(res: ScanResponse): Shape {
  const body = parseJson(res.body);
  if (Array.isArray(body)) return { kind: body.length === 0 ? 'empty array' : 'array', keys: [...new Set(body.slice(0, 5).filter(isRecord).flatMap((o) => Object.keys(o)))] };
  if (isRecord(body)) return { kind: 'object', keys: Object.keys(body) };
  if (body !== undefined) return { kind: typeof body, keys: [] };
  const type = (firstHeader(res.headers, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  return { kind: res.body.trim() === '' ? 'empty' : `text ${type}`, keys: [] };
}

/** The same kind of value, and at least half of the keys of both shared. */
export function alike(x: Shape, y: Shape): boolean {
  if (x.kind !== y.kind) return false;
  const all = new Set([...x.keys, ...y.keys]);
  if (all.size === 0) return true;
  return x.keys.filter((k) => y.keys.includes(k)).length / all.size >= 0.5;
}

function keysOf(shape: Shape): string {
  return shape.keys.length === 0 ? shape.kind : shape.keys.slice(0, 6).join(', ') + (shape.keys.length > 6 ? ', …' : '');
}

/** An answer to `endpoint` as the caller that a check already received (not a throttled one). */
function seenAs(ctx: ScanContext, endpoint: Endpoint, caller: Identity): ScanResponse | undefined {
  return ctx.http.history.find(
    (r) => r.request.method === endpoint.method && r.request.url === endpoint.url.href && Object.entries(caller.headers).every(([k, v]) => r.request.headers[k] === v) && !isThrottled(r),
  );
}

/**
 * The controls of an anonymous 2XX: what makes it a real answer, or undefined (no finding; a
 * comparison that could not be made is named in stats.skipped). Caller A's answer is asked for reads
 * only (a write as A would write once more).
 */
async function controlled(ctx: ScanContext, endpoint: Endpoint, res: ScanResponse): Promise<{ confidence: Confidence; why: string } | undefined> {
  const what = `auth.missing on ${endpoint.method} ${endpoint.template}`;
  if (refusalInBody(res)) {
    ctx.logger.debug(`${CHECK}: ${exchange(res)} is a refusal with a 2XX status (${excerpt(res.body, 80)}): not a finding`);
    return undefined;
  }
  const shape = shapeOf(res);
  const a = ctx.identities.a;
  let own: ScanResponse | undefined;
  if (a !== undefined && READS.has(endpoint.method)) {
    own = seenAs(ctx, endpoint, a) ?? (await ctx.http.send({ method: endpoint.method, url: endpoint.url, headers: { accept: 'application/json', ...a.headers } }));
    if (undecided(ctx, CHECK, what, own)) return undefined;
    if (!isApiSuccess(own)) {
      ctx.skip(CHECK, `${what}: no decision, it answers 2XX without credentials but caller A gets ${own.status}`);
      return undefined;
    }
    if (!alike(shape, shapeOf(own))) {
      ctx.logger.debug(`${CHECK}: ${exchange(res)} does not look like caller A's answer (${keysOf(shape)} / ${keysOf(shapeOf(own))}): not a finding`);
      return undefined;
    }
  }
  const control = await ctx.http.send({ method: endpoint.method, url: sibling(endpoint.url), headers: res.request.headers, ...(res.request.body !== undefined ? { body: res.request.body } : {}) });
  if (undecided(ctx, CHECK, what, control)) return undefined;
  if (isApiSuccess(control) && (normaliseBody(control.body, '') === normaliseBody(res.body, '') || alike(shape, shapeOf(control)))) {
    ctx.skip(CHECK, `${what}: no decision, a random path gets a like answer (${exchange(control)}: a catch-all, or one answer to everything)`);
    return undefined;
  }
  const compared = own !== undefined ? `it looks like caller A's (keys: ${keysOf(shape)})` : `no caller to compare with (pass --auth or --login for a surer finding)`;
  return { confidence: own !== undefined ? 'high' : 'medium', why: `${compared}, and a random path (${exchange(control)}) does not get the like of it` };
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
    const real = await controlled(ctx, endpoint, res);
    if (real === undefined) continue;
    found.push(
      findingFrom(CHECK, res, {
        id: 'auth.missing',
        title: `${endpoint.method} ${endpoint.template} answers without credentials`,
        severity: 'high',
        confidence: real.confidence,
        owasp: 'API2:2023',
        detail: `The document says ${endpoint.method} ${endpoint.template} needs credentials (security: ${(endpoint.scopes ?? []).length > 0 ? `scopes ${endpoint.scopes!.join(', ')}` : 'every alternative names a scheme'}); called with none it answered ${res.status}: ${real.why}.`,
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
  description: `Calls up to ${MAX_ANONYMOUS} reads (and with --destructive ${MAX_ANONYMOUS} writes) the OpenAPI document says need credentials without any (a 2XX is compared with caller A's answer and a random path's), and sends caller A's token as ?access_token=, ?token= or ?jwt= instead of the Authorization header to an endpoint that refuses anonymous callers.`,
  async run(ctx) {
    return [...(await missing(ctx)), ...(await tokenInQuery(ctx))];
  },
};
