import type { ValidateFunction } from 'ajv';
import { parse as parseCookies } from 'cookie';
import contentType from 'fast-content-type-parse';
import querystring from 'fast-querystring';
import findMyWay from 'find-my-way';
import { ConfigError, type ConfigIssue } from '../config/errors.js';
import { isObject, OPERATION_METHODS, type Json, type MediaInfo, type OpenApiDocument, type OperationInfo, type ParameterInfo, type ParameterLocation } from './document.js';
import { RequestSchemas, resolveSchema, toValidationErrors, type ValidationError } from './schema.js';
import { PlanBuilder, type Plan } from './allowlist.js';

/**
 * An OpenAPI document compiled for the gateway: a router over its path templates, and per
 * operation the validators of its parameters and body and the allowlists of its responses.
 * Compiled once per document (and unknown-query setting); routes sharing a document share it.
 */

export interface CompiledMedia {
  readonly range: string;
  /**
   * The range's schema for a JSON body (`application/json`, `…+json`), compiled when the range
   * admits one (`*\/*` and `application/*` do): the request's own type decides which is used.
   */
  readonly json: ValidateFunction | undefined;
  /** The same for an `application/x-www-form-urlencoded` body (values coerced). */
  readonly form: ValidateFunction | undefined;
}

export interface CompiledResponse {
  readonly status: string;
  /** Undefined: the response has no body. */
  readonly content: readonly { readonly range: string; readonly plan: Plan }[] | undefined;
}

export interface CompiledOperation {
  readonly info: OperationInfo;
  /** `GET /pets/{petId}`, for logs and events. */
  readonly label: string;
  /** Parameters by location; `validate` checks the object built from the request. */
  readonly parameters: readonly CompiledLocation[];
  readonly body: { readonly required: boolean; readonly media: readonly CompiledMedia[]; readonly accepted: string } | undefined;
  readonly responses: ReadonlyMap<string, CompiledResponse>;
}

export interface CompiledLocation {
  readonly in: ParameterLocation;
  readonly params: readonly CompiledParameter[];
  readonly validate: ValidateFunction | undefined;
}

export interface CompiledParameter {
  readonly info: ParameterInfo;
  /** What the schema takes: `array` and `object` values are built from several parts. */
  readonly shape: 'array' | 'object' | 'scalar';
  /** Properties of an object schema (form-exploded objects take these query names). */
  readonly properties: readonly string[];
}

export interface MatchedOperation {
  readonly operation: CompiledOperation;
  readonly params: Record<string, string | undefined>;
}

export class CompiledApi {
  readonly doc: OpenApiDocument;
  readonly operations: readonly CompiledOperation[];
  readonly #router: findMyWay.Instance<findMyWay.HTTPVersion.V1>;
  readonly unknownFormats: readonly string[];

  constructor(doc: OpenApiDocument, operations: CompiledOperation[], router: findMyWay.Instance<findMyWay.HTTPVersion.V1>, unknownFormats: string[]) {
    this.doc = doc;
    this.operations = operations;
    this.#router = router;
    this.unknownFormats = unknownFormats;
  }

  /** The operation for a method and a path relative to the document's server path. */
  match(method: string, path: string): MatchedOperation | undefined {
    let found = this.#router.find(method as findMyWay.HTTPMethod, path);
    if (found === null && method === 'HEAD') found = this.#router.find('GET', path);
    if (found === null) return undefined;
    // `/pets/` is not `/pets/{petId}` with an empty id: upstreams that ignore the trailing slash
    // would serve it as `/pets` (an operation that may not exist).
    for (const key in found.params) if (found.params[key] === '') return undefined;
    return { operation: found.store as CompiledOperation, params: found.params };
  }

  /** Methods the document has for a path (the `Allow` of a 405), none when the path is unknown. */
  allowed(path: string): string[] {
    const out: string[] = [];
    for (const method of OPERATION_METHODS) {
      const upper = method.toUpperCase();
      const found = this.#router.find(upper as findMyWay.HTTPMethod, path);
      if (found !== null && !Object.values(found.params).includes('')) out.push(upper);
    }
    return out;
  }
}

const compiled = new WeakMap<OpenApiDocument, CompiledApi>();

/** Compiles a document (once per document version). Throws ConfigError pointing into the document. */
export function compileApi(doc: OpenApiDocument): CompiledApi {
  const hit = compiled.get(doc);
  if (hit !== undefined) return hit;
  const schemas = new RequestSchemas(doc);
  const plans = new PlanBuilder(doc);
  const issues: ConfigIssue[] = [];
  const router = findMyWay({ ignoreTrailingSlash: false, caseSensitive: true, maxParamLength: 1000 });
  // First every schema is converted (their shared definitions collected), then compiled.
  const drafts = doc.operations.map((info) => {
    const locations = (['path', 'query', 'header', 'cookie'] as const).map((location) => {
      const params = info.parameters.filter((p) => p.in === location);
      const properties: Record<string, Json> = {};
      const required: string[] = [];
      for (const p of params) {
        properties[p.name] = p.schema === undefined ? true : schemas.convert(p.schema);
        if (p.required) required.push(p.name);
      }
      const schema = { type: 'object', properties, required } as Json;
      return { location, params, schema };
    });
    const media = (info.requestBody?.content ?? []).map((m) => ({ info: m, schema: m.schema === undefined ? undefined : schemas.convert(m.schema) }));
    return { info, locations, media };
  });
  const operations: CompiledOperation[] = [];
  for (const draft of drafts) {
    const { info } = draft;
    const parameters: CompiledLocation[] = draft.locations
      .filter((l) => l.params.length > 0 || l.location === 'query')
      .map((l) => ({
        in: l.location,
        params: l.params.map((p) => compileParameter(doc, p)),
        validate: l.params.length === 0 ? undefined : schemas.compile(l.schema, true, info.path),
      }));
    const body =
      info.requestBody === undefined
        ? undefined
        : {
            required: info.requestBody.required,
            accepted: info.requestBody.content.map((m) => m.range).join(', '),
            media: draft.media.map(({ info: m, schema }) => ({
              range: m.range,
              json: schema !== undefined && admitsJson(m.range) ? schemas.compile(schema, false, m.schema!.path) : undefined,
              form: schema !== undefined && admitsForm(m.range) ? schemas.compile(schema, true, m.schema!.path) : undefined,
            })),
          };
    const responses = new Map<string, CompiledResponse>();
    for (const r of info.responses) {
      responses.set(r.status, {
        status: r.status,
        content: r.content?.map((m: MediaInfo) => ({ range: m.range, plan: plans.plan(m.schema?.schema, m.schema?.path) })),
      });
    }
    const operation: CompiledOperation = { info, label: `${info.method} ${info.template}`, parameters, body, responses };
    operations.push(operation);
    try {
      router.on(info.method as findMyWay.HTTPMethod, toRouterPath(info.template), () => undefined, operation);
    } catch (error) {
      issues.push(doc.issue(info.path, `the path '${info.template}' cannot be routed: ${(error as Error).message}`));
    }
  }
  for (const problem of [...schemas.problems, ...plans.problems]) issues.push(doc.issue(problem.path, problem.message));
  if (issues.length > 0) throw new ConfigError(issues);
  const api = new CompiledApi(doc, operations, router, [...schemas.unknownFormats]);
  compiled.set(doc, api);
  return api;
}

function compileParameter(doc: OpenApiDocument, info: ParameterInfo): CompiledParameter {
  const schema = resolveSchema(doc, info.schema?.schema);
  const type = isObject(schema) ? schema.type : undefined;
  const has = (t: string) => type === t || (Array.isArray(type) && type.includes(t));
  const shape = info.json ? 'scalar' : has('array') ? 'array' : has('object') ? 'object' : 'scalar';
  const properties = isObject(schema) && isObject(schema.properties) ? Object.keys(schema.properties) : [];
  return { info, shape, properties };
}

/** `/pets/{petId}` → `/pets/:petId`; a literal `:` is doubled for find-my-way. */
function toRouterPath(template: string): string {
  return template.replaceAll(':', '::').replace(/\{([^{}/]+)\}/g, (_, name: string) => `:${name.replace(/[^A-Za-z0-9_]/g, '_')}`);
}

function admitsJson(range: string): boolean {
  return isJsonRange(range) || range === '*/*' || range === 'application/*';
}

function admitsForm(range: string): boolean {
  return range === 'application/x-www-form-urlencoded' || range === '*/*' || range === 'application/*';
}

export function isJsonRange(range: string): boolean {
  return range === 'application/json' || /^application\/[\w.-]+\+json$/.test(range);
}

/** The declared media range that takes `type` (exact, then `type/*`, then `*\/*`). */
export function matchMedia<T extends { readonly range: string }>(list: readonly T[], type: string): T | undefined {
  let wildcard: T | undefined;
  let any: T | undefined;
  const slash = type.indexOf('/');
  const major = type.slice(0, slash);
  for (const m of list) {
    if (m.range === type) return m;
    if (m.range === '*/*') any ??= m;
    else if (m.range.endsWith('/*') && m.range.slice(0, -2) === major) wildcard ??= m;
  }
  return wildcard ?? any;
}

/** A request's parameters, gathered as the document describes them. */
export interface RequestParts {
  readonly query: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly pathParams: Record<string, string | undefined>;
}

/**
 * Checks every parameter of the operation; the query's undeclared names too unless `allowUnknownQuery`.
 * Appends to `errors`.
 */
export function checkParameters(operation: CompiledOperation, parts: RequestParts, allowUnknownQuery: boolean, errors: ValidationError[]): void {
  for (const location of operation.parameters) {
    let values: Record<string, unknown>;
    switch (location.in) {
      case 'query':
        values = queryValues(location.params, parts.query, allowUnknownQuery, errors);
        break;
      case 'path':
        values = pathValues(location.params, parts.pathParams, errors);
        break;
      case 'header':
        values = headerValues(location.params, parts.headers, errors);
        break;
      case 'cookie':
        values = cookieValues(location.params, parts.headers.cookie, errors);
        break;
    }
    if (location.validate !== undefined && !location.validate(values)) toValidationErrors(location.validate.errors, `/${location.in}`, errors);
  }
}

function queryValues(params: readonly CompiledParameter[], query: string, allowUnknown: boolean, errors: ValidationError[]): Record<string, unknown> {
  const parsed = (query.length > 1 ? querystring.parse(query.slice(1)) : Object.create(null)) as Record<string, string | string[]>;
  const values: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  const consumed = new Set<string>();
  for (const p of params) {
    const { name, style, explode } = p.info;
    if (style === 'deepObject' || (p.shape === 'object' && style === 'form' && explode)) {
      const object: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
      let any = false;
      for (const key of Object.keys(parsed)) {
        let prop: string | undefined;
        if (style === 'deepObject') {
          if (key.startsWith(`${name}[`) && key.endsWith(']')) prop = key.slice(name.length + 1, -1);
          // `filter[owner][id]`: qs and Express build nested objects from it; OpenAPI has none.
          if (prop !== undefined && (prop.includes('[') || prop.includes(']'))) {
            consumed.add(key);
            errors.push({ pointer: `/query/${clip(key)}`, detail: 'nested deepObject keys are not accepted' });
            continue;
          }
        } else if (p.properties.includes(key)) prop = key;
        if (prop === undefined) continue;
        consumed.add(key);
        any = true;
        const value = parsed[key]!;
        if (Array.isArray(value)) errors.push({ pointer: `/query/${name}/${prop}`, detail: 'is given more than once' });
        else object[prop] = value;
      }
      if (any) values[name] = object;
      continue;
    }
    const raw = parsed[name];
    if (raw === undefined) continue;
    consumed.add(name);
    if (!p.info.allowEmptyValue && (raw === '' || (Array.isArray(raw) && raw.includes('')))) {
      errors.push({ pointer: `/query/${name}`, detail: 'must not be empty' });
      continue;
    }
    if (p.shape === 'array') {
      const list = Array.isArray(raw) ? raw : [raw];
      if (explode) values[name] = list;
      else if (list.length > 1) errors.push({ pointer: `/query/${name}`, detail: 'is given more than once' });
      else values[name] = list[0]!.split(style === 'spaceDelimited' ? ' ' : style === 'pipeDelimited' ? '|' : ',');
    } else if (Array.isArray(raw)) {
      errors.push({ pointer: `/query/${name}`, detail: 'is given more than once' });
    } else if (p.shape === 'object') {
      values[name] = pairs(raw.split(','));
    } else values[name] = scalar(p, raw, `/query/${name}`, errors);
  }
  for (const key of Object.keys(parsed)) {
    if (consumed.has(key)) continue;
    if (!allowUnknown) errors.push({ pointer: `/query/${clip(key)}`, detail: 'is not a declared parameter' });
    // Allowed unknown names still may not stand for a declared one (`limit[]`, `Limit`, `limit.x`):
    // qs, Express or ASP.NET model binding would read them as that parameter, unchecked.
    else if (lookAlike(key, params)) errors.push({ pointer: `/query/${clip(key)}`, detail: 'is another spelling of a declared parameter' });
  }
  return values;
}

function lookAlike(key: string, params: readonly CompiledParameter[]): boolean {
  const cut = key.search(/[[.]/);
  const base = (cut === -1 ? key : key.slice(0, cut)).toLowerCase();
  return params.some((p) => p.info.name.toLowerCase() === base);
}

/** Request names in pointers are bounded: at most 100 characters of them. */
function clip(name: string): string {
  return name.length > 100 ? `${name.slice(0, 99)}…` : name;
}

function pathValues(params: readonly CompiledParameter[], pathParams: Record<string, string | undefined>, errors: ValidationError[]): Record<string, unknown> {
  const values: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const p of params) {
    let raw = pathParams[p.info.name.replace(/[^A-Za-z0-9_]/g, '_')];
    if (raw === undefined) continue;
    if (p.info.style === 'label' && raw.startsWith('.')) raw = raw.slice(1);
    else if (p.info.style === 'matrix' && raw.startsWith(`;${p.info.name}=`)) raw = raw.slice(p.info.name.length + 2);
    if (p.shape === 'array') values[p.info.name] = raw.split(p.info.style === 'label' ? '.' : ',');
    else if (p.shape === 'object') values[p.info.name] = pairs(raw.split(','));
    else values[p.info.name] = scalar(p, raw, `/path/${p.info.name}`, errors);
  }
  return values;
}

function headerValues(params: readonly CompiledParameter[], headers: Record<string, string | string[] | undefined>, errors: ValidationError[]): Record<string, unknown> {
  const values: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const p of params) {
    const raw = headers[p.info.name];
    if (raw === undefined) continue;
    const text = Array.isArray(raw) ? raw.join(', ') : raw;
    if (p.shape === 'array') values[p.info.name] = text.split(',').map((s) => s.trim());
    else if (p.shape === 'object') values[p.info.name] = pairs(text.split(',').map((s) => s.trim()));
    else values[p.info.name] = scalar(p, text, `/header/${p.info.name}`, errors);
  }
  return values;
}

function cookieValues(params: readonly CompiledParameter[], header: string | string[] | undefined, errors: ValidationError[]): Record<string, unknown> {
  const values: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  if (header === undefined) return values;
  const text = Array.isArray(header) ? header.join('; ') : header;
  const cookies = parseCookies(text);
  for (const p of params) {
    const raw = cookies[p.info.name];
    if (raw === undefined) continue;
    // The cookie parser keeps the first of repeated names; other servers keep the last.
    if (cookieCount(text, p.info.name) > 1) {
      errors.push({ pointer: `/cookie/${p.info.name}`, detail: 'is given more than once' });
      continue;
    }
    values[p.info.name] = p.shape === 'array' ? raw.split(',') : scalar(p, raw, `/cookie/${p.info.name}`, errors);
  }
  return values;
}

function cookieCount(header: string, name: string): number {
  let n = 0;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if ((eq === -1 ? pair : pair.slice(0, eq)).trim() === name) n++;
  }
  return n;
}

/** A parameter serialized as JSON (`content: application/json`) is parsed; others stay strings (ajv coerces them). */
function scalar(p: CompiledParameter, raw: string, pointer: string, errors: ValidationError[]): unknown {
  if (!p.info.json) return raw;
  try {
    return JSON.parse(raw);
  } catch {
    errors.push({ pointer, detail: 'must be JSON' });
    return undefined;
  }
}

/** `R,100,G,200` → `{ R: '100', G: '200' }` (simple and form styles without explode). */
function pairs(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) if (list[i] !== '__proto__') out[list[i]!] = list[i + 1]!;
  return out;
}

/** The media type of a request's `Content-Type`, lowercased; '' when missing or malformed. */
export function requestMediaType(header: string | undefined): string {
  if (header === undefined) return '';
  return contentType.safeParse(header).type.toLowerCase();
}
