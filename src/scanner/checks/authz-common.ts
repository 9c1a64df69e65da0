import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { ScanResponse } from '../http.js';
import { propertiesOf, sampleValue } from '../openapi.js';
import { isThrottled } from '../throttle.js';
import type { Endpoint, Identity, ScanContext } from '../types.js';

/**
 * What the authorization and surface checks (bola, function-level, mass-assignment, methods,
 * inventory, ssrf) share: JSON reading, objects and their ids in list answers, URLs of an
 * operation with other path values, request bodies made from a schema, and the resources a
 * document declares (an item operation, its collection, its create/update/delete operations).
 */

export const NO_DOCUMENT = 'needs an OpenAPI document (--openapi)';

/** A string the target has never seen: `rampart-scan-<8 hex>` (markers, random control paths). */
export function marker(prefix = 'rampart-scan'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/**
 * A sibling of the resource no API declares (`/api/reports` → `/api/rampart-scan-<8 hex>`, no query):
 * what it gets too says nothing about the resource (a catch-all, one answer to everything).
 */
export function sibling(url: URL): URL {
  const u = new URL(url.href);
  u.pathname = `${u.pathname.replace(/\/[^/]*\/?$/, '')}/${marker()}`;
  u.search = '';
  return u;
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export const is2xx = (res: ScanResponse): boolean => res.status >= 200 && res.status <= 299;

/** Request headers of a caller (none for the anonymous one), asking for JSON. */
export function as(identity: Identity | undefined, extra: Record<string, string> = {}): Record<string, string> {
  return { accept: 'application/json', ...identity?.headers, ...extra };
}

export function jsonHeaders(identity: Identity | undefined): Record<string, string> {
  return as(identity, { 'content-type': 'application/json' });
}

/** The string values of a JSON value, with the property that holds each (bounded walk). */
export function stringLeaves(value: unknown, out: { key: string; value: string }[] = [], key = '', depth = 0): { key: string; value: string }[] {
  if (out.length >= 200 || depth > 8) return out;
  if (typeof value === 'string') out.push({ key, value });
  else if (Array.isArray(value)) for (const v of value) stringLeaves(v, out, key, depth + 1);
  else if (isRecord(value)) for (const [k, v] of Object.entries(value)) stringLeaves(v, out, k, depth + 1);
  return out;
}

/** The objects of a list answer: a JSON array, or the first array of objects among its properties (`items`, `data`…). */
export function objectsOf(body: unknown): Record<string, unknown>[] {
  if (Array.isArray(body)) return body.filter(isRecord);
  if (!isRecord(body)) return [];
  const preferred = ['items', 'data', 'results', 'records', 'content', 'values'];
  const keys = [...preferred.filter((k) => k in body), ...Object.keys(body).filter((k) => !preferred.includes(k))];
  for (const k of keys) {
    const v = body[k];
    if (Array.isArray(v) && v.some(isRecord)) return v.filter(isRecord);
  }
  return [];
}

/** The id of an object: the property named like the path parameter, else `id`, `_id`, `uuid`. */
export function idOf(object: Record<string, unknown>, parameter: string): string | undefined {
  for (const key of [parameter, 'id', '_id', 'uuid']) {
    const v = object[key];
    if ((typeof v === 'string' && v !== '') || (typeof v === 'number' && Number.isFinite(v))) return String(v);
  }
  return undefined;
}

/** The endpoint's URL with other values for (some of) its path parameters. */
export function urlFor(endpoint: Endpoint, values: Record<string, string>): URL {
  let filled = endpoint.template;
  let wanted = endpoint.template;
  for (const p of endpoint.parameters.filter((x) => x.in === 'path')) {
    filled = filled.replaceAll(`{${p.name}}`, encodeURIComponent(p.value));
    wanted = wanted.replaceAll(`{${p.name}}`, encodeURIComponent(values[p.name] ?? p.value));
  }
  const url = new URL(endpoint.url.href);
  if (url.pathname.endsWith(filled)) url.pathname = `${url.pathname.slice(0, url.pathname.length - filled.length)}${wanted}`;
  return url;
}

const pathParameters = (e: Endpoint) => e.parameters.filter((p) => p.in === 'path');

/**
 * A resource as the document declares it: an item operation `GET /notes/{id}` (its last segment
 * the one path parameter) and whatever else is declared around it.
 */
export interface Resource {
  item: Endpoint;
  /** The path parameter naming the object. */
  parameter: string;
  /** `GET /notes`. */
  list?: Endpoint | undefined;
  /** `POST /notes` with a JSON body. */
  create?: Endpoint | undefined;
  /** `PATCH /notes/{id}` (preferred) or `PUT`, with a JSON body. */
  update?: Endpoint | undefined;
  /** `DELETE /notes/{id}`. */
  remove?: Endpoint | undefined;
}

export function resourcesOf(endpoints: readonly Endpoint[]): Resource[] {
  const out: Resource[] = [];
  for (const item of endpoints) {
    if (item.from !== 'openapi' || item.method !== 'GET') continue;
    const m = /^(.*)\/\{([^{}/]+)\}$/.exec(item.template);
    if (m === null || pathParameters(item).length !== 1) continue;
    const [, parent, parameter] = m as unknown as [string, string, string];
    const at = (method: string, template: string) => endpoints.find((e) => e.method === method && e.template === template);
    const withBody = (e: Endpoint | undefined) => (e?.requestBody?.mediaType.includes('json') === true ? e : undefined);
    out.push({
      item,
      parameter,
      list: at('GET', parent),
      create: withBody(at('POST', parent)),
      update: withBody(at('PATCH', item.template)) ?? withBody(at('PUT', item.template)),
      remove: at('DELETE', item.template),
    });
  }
  return out;
}

/** A JSON value for a schema: its sample (typed), nested objects for required object properties. */
export function sampleOf(name: string, schema: Record<string, unknown> | undefined, depth = 0): unknown {
  const type = Array.isArray(schema?.type) ? (schema.type as string[]).find((t) => t !== 'null') : (schema?.type as string | undefined);
  if (type === 'object' || (type === undefined && schema?.properties !== undefined)) return depth > 3 ? {} : bodyFor(schema, {}, depth + 1);
  if (type === 'array') return [];
  const text = sampleValue(name, schema);
  if (type === 'integer' || type === 'number') return Number(text);
  if (type === 'boolean') return true;
  return text;
}

function requiredOf(schema: Record<string, unknown> | undefined): Set<string> {
  const own = Array.isArray(schema?.required) ? (schema.required as unknown[]).filter((r): r is string => typeof r === 'string') : [];
  const parts = Array.isArray(schema?.allOf) ? (schema.allOf as Record<string, unknown>[]).flatMap((p) => [...requiredOf(p)]) : [];
  return new Set([...own, ...parts]);
}

const SIMPLE = new Set(['string', 'integer', 'number', 'boolean']);

/**
 * A body a server should accept: every required property and every writable property of a simple
 * type, from its sample value (readOnly properties are left out), then `overrides` on top.
 */
export function bodyFor(schema: Record<string, unknown> | undefined, overrides: Record<string, unknown> = {}, depth = 0): Record<string, unknown> {
  const required = requiredOf(schema);
  const body: Record<string, unknown> = {};
  for (const [name, prop] of Object.entries(propertiesOf(schema))) {
    if (prop.readOnly === true) continue;
    const type = Array.isArray(prop.type) ? (prop.type as string[]).find((t) => t !== 'null') : (prop.type as string | undefined);
    if (required.has(name) || (type !== undefined && SIMPLE.has(type))) body[name] = sampleOf(name, prop, depth);
  }
  return { ...body, ...overrides };
}

/** A writable string property of a body schema that can carry a marker (no format, no enum, long enough); names like title first. */
export function markableProperty(schema: Record<string, unknown> | undefined, length: number): string | undefined {
  const candidates = Object.entries(propertiesOf(schema)).filter(([, p]) => {
    const type = Array.isArray(p.type) ? (p.type as string[]) : [p.type];
    return p.readOnly !== true && type.includes('string') && p.format === undefined && p.enum === undefined && p.const === undefined && p.pattern === undefined && !(typeof p.maxLength === 'number' && p.maxLength < length);
  });
  const named = candidates.find(([n]) => /title|name|subject|label|description|body|content|text|note|comment/i.test(n));
  return (named ?? candidates[0])?.[0];
}

/** The id of an object a POST created: from its JSON answer, else the last segment of `Location`. */
export function createdId(res: ScanResponse, parameter: string): string | undefined {
  const body = parseJson(res.body);
  const direct = isRecord(body) ? (idOf(body, parameter) ?? (isRecord(body.data) ? idOf(body.data, parameter) : undefined)) : undefined;
  if (direct !== undefined) return direct;
  const location = res.headers.location;
  const value = Array.isArray(location) ? location[0] : location;
  if (value === undefined) return undefined;
  try {
    return decodeURIComponent(value.replace(/\/+$/, '').split('/').pop() ?? '') || undefined;
  } catch {
    // Not valid percent-encoding (a hostile or broken server): no id rather than a crashed check.
    return undefined;
  }
}

/** The subject (`sub`) of a caller's bearer JWT, when it is one: the user id a privileged `ownerId` is set to. */
export function subjectOf(identity: Identity | undefined): string | undefined {
  if (identity?.token === undefined) return undefined;
  try {
    const sub = decodeJwt(identity.token).sub;
    return typeof sub === 'string' && sub !== '' ? sub : undefined;
  } catch {
    return undefined;
  }
}

/** Enough budget left for a sequence that writes and must clean up after itself. */
export function budgetFor(ctx: ScanContext, requests: number): boolean {
  return ctx.http.budget - ctx.http.sent >= requests;
}

/**
 * A copy of the answer whose body excerpt starts near `needle`, so the bounded evidence (500
 * characters of a body) shows it even in a long answer.
 */
export function around(res: ScanResponse, needle: string): ScanResponse {
  const at = res.body.indexOf(needle);
  if (at < 0 || at + needle.length <= 400) return res;
  const from = Math.max(0, at - 150);
  return { ...res, body: `…${res.body.slice(from)}` };
}

/**
 * True when one of the answers is throttled (429, 503 or Retry-After: see isThrottled): it decides
 * nothing, neither a refusal nor an acceptance, so the comparison it belongs to is left undecided
 * and named in `stats.skipped` (once per reason).
 */
export function undecided(ctx: ScanContext, check: string, what: string, ...answers: (ScanResponse | undefined)[]): boolean {
  const res = answers.find((r) => r !== undefined && isThrottled(r));
  if (res === undefined) return false;
  ctx.skip(check, `${what}: no decision, ${exchange(res)} was throttled (429, 503 or Retry-After; a lower --rate may help)`);
  return true;
}

/** `GET /notes/n-1 → 200` for details. */
export function exchange(res: ScanResponse): string {
  const url = new URL(res.request.url);
  return `${res.request.method} ${url.pathname}${url.search} → ${res.status}`;
}

export function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host.endsWith('.localhost') || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '::1' || host === '::ffff:127.0.0.1';
}
