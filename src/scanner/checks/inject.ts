import { randomBytes } from 'node:crypto';
import { findingFrom, type FindingFields } from '../finding.js';
import { ScanRequestError, type ScanHttpClient, type ScanRequest, type ScanResponse } from '../http.js';
import { propertiesOf, sampleValue } from '../openapi.js';
import { isThrottled } from '../throttle.js';
import type { Endpoint, Finding, ScanContext } from '../types.js';

/**
 * What the injection checks share: where a payload can go (the injection points of the scan's
 * endpoints), how a request carrying one is built, the baseline answer each is compared with, a
 * time-based probe that never reports on one slow answer, and evidence that shows the marker.
 *
 * Safe mode injects only into reads: the query, path and header parameters of GET operations
 * (and the query parameters crawled URLs already carry). With --destructive the query, path and
 * JSON body properties of POST, PUT and PATCH operations are injected too. Operations whose path
 * names a state change a GET must not repeat (logout, delete, revoke…) are never injected.
 */

/** Parameters injected per scan, per check, at most. */
export const MAX_POINTS = 12;

/**
 * Time-based probes. Exported as one object so tests can shorten the sleep; a scan uses the
 * defaults. `sleepSeconds` is what the payloads ask the server to sleep; an answer is slow when it
 * takes at least that long, fast when it takes less than half of it. `maxSlowAnswers` is the
 * global cap per check: once that many answers came back slow (real hits, or a server that is
 * slow anyway), the check sends no more sleep payloads.
 */
export const timing = { sleepSeconds: 2, maxSlowAnswers: 6 };

/** A place a payload can go: one parameter of one operation. */
export interface InjectionPoint {
  endpoint: Endpoint;
  in: 'query' | 'path' | 'header' | 'body';
  name: string;
  /** The value sent by default (what the baseline sends). */
  value: string;
  schema?: Record<string, unknown> | undefined;
}

/** Paths a scan never injects into, whatever the method: they change state even when read. */
const STATEFUL = /(^|\/)(log-?out|sign-?out|delete|remove|destroy|revoke)(\/|$)/i;
const WRITES = new Set(['POST', 'PUT', 'PATCH']);

export function isStringLike(schema: Record<string, unknown> | undefined): boolean {
  if (schema === undefined) return true;
  if (Array.isArray(schema.enum) || schema.const !== undefined) return false;
  const type = schema.type;
  if (type === undefined) return schema.properties === undefined && schema.items === undefined;
  return type === 'string' || (Array.isArray(type) && type.includes('string'));
}

export function isNumeric(point: InjectionPoint): boolean {
  const type = point.schema?.type;
  return type === 'integer' || type === 'number' || (point.schema === undefined && /^\d+$/.test(point.value));
}

export const pointLabel = (p: InjectionPoint): string => `${p.in} parameter '${p.name}' of ${p.endpoint.method} ${p.endpoint.template}`;
export const operationKey = (e: Endpoint): string => `${e.method} ${e.template}`;

/**
 * What every injection check starts with: the points it may probe (the writes left out in safe
 * mode are named in the stats, with what of them was not sent) and a prober for them.
 */
export function beginInjection(ctx: ScanContext, check: string, leftOut = 'their bodies and parameters'): { points: InjectionPoint[]; prober: Prober } {
  const { points, writesLeftOut } = injectionPoints(ctx);
  if (writesLeftOut > 0) ctx.skip(check, `${writesLeftOut} write operation(s) not injected: ${leftOut} only with --destructive`);
  return { points, prober: new Prober(ctx) };
}

/**
 * Every injection point of the scan's endpoints, in a stable order: reads before writes, then the
 * document's order. With `destructive` false the points of writes are left out and counted (the
 * check says so in the stats).
 */
export function injectionPoints(ctx: ScanContext): { points: InjectionPoint[]; writesLeftOut: number } {
  const points: InjectionPoint[] = [];
  const seen = new Set<string>();
  let writesLeftOut = 0;
  const add = (p: InjectionPoint): void => {
    const key = `${operationKey(p.endpoint)} ${p.in} ${p.name}`;
    if (seen.has(key) || !injectable(p)) return;
    seen.add(key);
    points.push(p);
  };
  const own = new Set(Object.keys(ctx.identities.a?.headers ?? {}));
  const ordered = [...ctx.endpoints.filter((e) => e.method === 'GET'), ...ctx.endpoints.filter((e) => WRITES.has(e.method))];
  for (const endpoint of ordered) {
    if (STATEFUL.test(endpoint.template)) continue;
    const found: InjectionPoint[] = [];
    if (endpoint.from === 'crawl') {
      for (const [name, value] of endpoint.url.searchParams) found.push({ endpoint, in: 'query', name, value });
    }
    for (const p of endpoint.parameters) {
      if (p.in === 'cookie' || (p.in === 'header' && own.has(p.name.toLowerCase()))) continue;
      found.push({ endpoint, in: p.in, name: p.name, value: p.value, schema: p.schema });
    }
    const body = endpoint.requestBody;
    if (body !== undefined && /json/.test(body.mediaType)) {
      for (const [name, schema] of Object.entries(propertiesOf(body.schema))) {
        if (isStringLike(schema) && schema.readOnly !== true) found.push({ endpoint, in: 'body', name, value: sampleValue(name, schema), schema });
      }
    }
    if (WRITES.has(endpoint.method) && !ctx.options.destructive) {
      writesLeftOut += found.length > 0 ? 1 : 0;
      continue;
    }
    for (const p of found) add(p);
  }
  return { points, writesLeftOut };
}

/** The points a check probes: the relevant ones, best first (strings before numbers), at most MAX_POINTS. */
export function choosePoints(points: readonly InjectionPoint[], rank: (p: InjectionPoint) => number | undefined): InjectionPoint[] {
  return points
    .map((p, i) => ({ p, i, r: rank(p) }))
    .filter((x): x is { p: InjectionPoint; i: number; r: number } => x.r !== undefined)
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .slice(0, MAX_POINTS)
    .map((x) => x.p);
}

/** The default ranking: string parameters first, then the others (numbers are injectable too). */
export const byType = (p: InjectionPoint): number => (isStringLike(p.schema) ? 0 : 1);

/** A JSON body made from the schema: each property's sample value, typed. */
export function sampleBody(endpoint: Endpoint): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(propertiesOf(endpoint.requestBody?.schema))) {
    if (schema.readOnly === true) continue;
    const value = sampleValue(name, schema);
    const type = Array.isArray(schema.type) ? (schema.type as string[]).find((t) => t !== 'null') : schema.type;
    if (type === 'integer' || type === 'number') out[name] = Number(value);
    else if (type === 'boolean') out[name] = value === 'true';
    else if (type === 'object') out[name] = {};
    else if (type === 'array') out[name] = [];
    else out[name] = value;
  }
  return out;
}

/** `%5B`… kept readable in a query key (`name[$ne]`); everything else percent-encoded. */
function encodeKey(key: string): string {
  return encodeURIComponent(key).replace(/%5B/g, '[').replace(/%5D/g, ']').replace(/%24/g, '$');
}

/** The concrete path of an endpoint with one path parameter set to `value` (undefined when the template cannot be matched). */
function pathWith(endpoint: Endpoint, name: string, value: string): string | undefined {
  const fill = (template: string, override?: string) => {
    let path = template;
    for (const p of endpoint.parameters.filter((x) => x.in === 'path')) path = path.replaceAll(`{${p.name}}`, encodeURIComponent(p.name === name && override !== undefined ? override : p.value));
    return path;
  };
  const filled = fill(endpoint.template);
  if (!endpoint.url.pathname.endsWith(filled)) return undefined;
  return `${endpoint.url.pathname.slice(0, endpoint.url.pathname.length - filled.length)}${fill(endpoint.template, value)}`;
}

/**
 * The endpoint's request with the point's parameter replaced. `key` renames a query parameter
 * (`name[$ne]`); `json` puts any JSON value into a body property (operators, objects).
 */
export function requestWith(ctx: ScanContext, point: InjectionPoint, value: string, opts: { key?: string; json?: unknown } = {}): ScanRequest {
  const { endpoint } = point;
  const url = new URL(endpoint.url);
  const headers: Record<string, string> = { accept: 'application/json, */*;q=0.5', ...ctx.identities.a?.headers };
  let body: string | undefined;
  if (point.in === 'query') {
    const rest = new URLSearchParams(url.search);
    rest.delete(point.name);
    const others = rest.toString();
    url.search = `${others === '' ? '' : `${others}&`}${encodeKey(opts.key ?? point.name)}=${encodeURIComponent(value)}`;
  } else if (point.in === 'path') {
    url.pathname = pathWith(endpoint, point.name, value) ?? url.pathname;
  } else if (point.in === 'header') {
    headers[point.name.toLowerCase()] = value;
  }
  if (WRITES.has(endpoint.method) && endpoint.requestBody !== undefined && /json/.test(endpoint.requestBody.mediaType)) {
    const json = sampleBody(endpoint);
    if (point.in === 'body') json[point.name] = 'json' in opts ? opts.json : value;
    body = JSON.stringify(json);
    headers['content-type'] = 'application/json';
  }
  return { method: endpoint.method, url, headers, ...(body === undefined ? {} : { body }) };
}

/** Whether a path point can be injected at all (its template matches the endpoint's URL). */
export function injectable(point: InjectionPoint): boolean {
  return point.in !== 'path' || pathWith(point.endpoint, point.name, point.value) !== undefined;
}

/** A value that matches nothing a real API holds. */
export function nonsense(): string {
  return `rampart-${randomBytes(5).toString('hex')}`;
}

const baselines = new WeakMap<ScanHttpClient, Map<string, ScanResponse>>();
/** Requests that failed (reset, timeout) before a probe gives up on the check: then the runner marks it incomplete. */
const MAX_FAILURES = 3;

/**
 * One check's sender: requests that fail are answered `undefined` (a probe cannot decide on them)
 * until MAX_FAILURES, then the error goes to the runner; budget exhaustion always does. A throttled
 * answer (429, 503, Retry-After: see isThrottled) is `undefined` too: it says nothing about the
 * payload, so it is neither a refusal nor a success, nor a fast or slow answer — a comparison with
 * one in it is undecided, never a finding. (The sensitive-data check still reads its content: a
 * stack trace on a 503 is a leak.) Counts the slow answers of time-based probes against the global
 * cap, and the throttled answers, which `sayThrottled` reports.
 */
export class Prober {
  #failures = 0;
  slowAnswers = 0;
  throttled = 0;

  constructor(readonly ctx: ScanContext) {}

  async send(req: ScanRequest): Promise<ScanResponse | undefined> {
    let res: ScanResponse;
    try {
      res = await this.ctx.http.send(req);
    } catch (error) {
      if (!(error instanceof ScanRequestError) || ++this.#failures >= MAX_FAILURES) throw error;
      this.ctx.logger.debug(`probe failed, not judged: ${error.message}`);
      return undefined;
    }
    if (isThrottled(res)) {
      this.throttled++;
      this.ctx.logger.debug(`throttled answer (${res.status}) to ${req.method} ${String(req.url)}, not judged`);
      return undefined;
    }
    return res;
  }

  /** Says (in the scan's stats) that throttled answers left some probes of `check` undecided. */
  sayThrottled(check: string): void {
    if (this.throttled > 0) this.ctx.skip(check, `${this.throttled} throttled answer(s) (429, 503 or Retry-After): the probes they were part of are undecided`);
  }

  /**
   * The answer to the point's default value. The same request is sent once per scan: the
   * injection checks compare against the same baseline (a throttled one is not kept: the next
   * check asks again).
   */
  async baseline(point: InjectionPoint): Promise<ScanResponse | undefined> {
    const req = requestWith(this.ctx, point, point.value);
    const key = `${req.method} ${String(req.url)} ${JSON.stringify(req.headers)} ${req.body ?? ''}`;
    let cache = baselines.get(this.ctx.http);
    if (cache === undefined) baselines.set(this.ctx.http, (cache = new Map()));
    const known = cache.get(key);
    if (known !== undefined) return known;
    const res = await this.send(req);
    if (res !== undefined) cache.set(key, res);
    return res;
  }

  get slowCapReached(): boolean {
    return this.slowAnswers >= timing.maxSlowAnswers;
  }
}

export const slowMs = (): number => timing.sleepSeconds * 1000;
const isSlow = (res: ScanResponse): boolean => res.durationMs >= slowMs();
const isFast = (res: ScanResponse): boolean => res.durationMs < slowMs() / 2;

export type DelayVerdict =
  | { kind: 'none' }
  /** A slow answer that did not hold up: try no more payloads on this point. */
  | { kind: 'stop'; why: string }
  | { kind: 'confirmed'; first: ScanResponse; control: ScanResponse; repeat: ScanResponse };

/**
 * A bounded time-based probe: `payload(s)` is a value asking the server to sleep `s` seconds. The
 * delay counts only when the sleep payload is slow (≥ the sleep, and ≥ 80 % of it over the
 * baseline), the same payload with a zero sleep is fast, and the sleep payload is slow again when
 * repeated. At most three slow answers per point: the first, a slow control, the repeat.
 */
export async function probeDelay(prober: Prober, point: InjectionPoint, baseline: ScanResponse, payload: (seconds: number) => string): Promise<DelayVerdict> {
  const { ctx } = prober;
  const seconds = timing.sleepSeconds;
  const first = await prober.send(requestWith(ctx, point, payload(seconds)));
  if (first === undefined) return { kind: 'stop', why: 'the sleep payload got no answer (or a throttled one)' };
  if (!isSlow(first)) return { kind: 'none' };
  prober.slowAnswers++;
  if (first.durationMs - baseline.durationMs < 0.8 * slowMs()) return { kind: 'stop', why: `the baseline (${baseline.durationMs} ms) was nearly as slow` };
  const control = await prober.send(requestWith(ctx, point, payload(0)));
  if (control === undefined) return { kind: 'stop', why: 'the zero-sleep control got no answer (or a throttled one)' };
  if (!isFast(control)) {
    if (isSlow(control)) prober.slowAnswers++;
    return { kind: 'stop', why: `the zero-sleep control was slow too (${control.durationMs} ms)` };
  }
  const repeat = await prober.send(requestWith(ctx, point, payload(seconds)));
  if (repeat === undefined) return { kind: 'stop', why: 'the repeated sleep payload got no answer (or a throttled one)' };
  if (!isSlow(repeat)) return { kind: 'stop', why: `one slow answer (${first.durationMs} ms), not repeated (${repeat.durationMs} ms)` };
  prober.slowAnswers++;
  return { kind: 'confirmed', first, control, repeat };
}

/** Whether a baseline is fast enough for a time-based probe to mean anything. */
export const fastBaseline = (res: ScanResponse): boolean => isFast(res);

/**
 * A finding whose evidence shows `marker` (found at `index` of the body): the body excerpt starts a
 * little before it, so the bounded excerpt (500 characters) holds it even in a long page. `mask`
 * replaces secrets in the excerpt.
 */
export function findingAt(check: string, res: ScanResponse, fields: FindingFields, endpoint: Endpoint | undefined, at?: { index: number; mask?: readonly [string, string][] }): Finding {
  // Masked over the whole body first (a cut must not leave half a secret readable), the marker's index moved along.
  let { body } = res;
  let index = at?.index ?? 0;
  const masks = new Map((at?.mask ?? []).filter(([secret]) => secret !== ''));
  if (masks.size > 0) {
    const alternatives = [...masks.keys()].sort((x, y) => y.length - x.length).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    const marker = index;
    body = body.replace(new RegExp(alternatives.join('|'), 'g'), (secret: string, offset: number) => {
      const masked = masks.get(secret)!;
      if (offset < marker) index += masked.length - secret.length;
      return masked;
    });
  }
  if (index > 150) body = `…${body.slice(index - 100)}`;
  return findingFrom(check, { ...res, body }, fields, endpoint);
}

/** An answer in a line: `200, 12 ms`. */
export const brief = (res: ScanResponse): string => `${res.status}, ${res.durationMs} ms`;
