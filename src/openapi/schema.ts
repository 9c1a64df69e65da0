import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { escapePointer } from '../gateway/json-text.js';
import addFormatsModule from 'ajv-formats';
import type { ConfigPath } from '../config/errors.js';
import { isObject, type Json, type JsonObject, type OpenApiDocument, type SchemaAt } from './document.js';

// ajv-formats is CommonJS with a default export.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

/**
 * Request schemas of an OpenAPI document, turned into JSON Schema 2020-12 for ajv:
 *
 * - OpenAPI 3.0's dialect is converted (`nullable`, boolean `exclusiveMinimum`/`Maximum`, `$ref`
 *   siblings ignored); annotations ajv does not know (`example`, `xml`, `discriminator`, `x-…`) go.
 * - Mass assignment: every object a request may carry is closed unless its schema says
 *   `additionalProperties` itself. The closing `unevaluatedProperties: false` is put where a schema
 *   is used (a body, a property, an item), never inside `allOf`/`anyOf`/`oneOf` members or on the
 *   shared definitions themselves, so composed schemas (`allOf: [Base, {…}]`) still accept the
 *   properties of every part.
 * - `readOnly` schemas are refused in requests, and drop out of their parent's `required`.
 * - `$ref`s stay references, to one `$defs` resource per document, so ajv resolves them and
 *   recursive schemas need no expansion.
 */

const READ_ONLY = 'x-rmp-read-only';
const DEFS_ID = 'rmp:request';
/** Annotations of the OpenAPI dialect ajv does not know: dropped. */
const DROPPED = new Set(['example', 'xml', 'externalDocs', 'discriminator', '$schema', '$comment', '$id', 'definitions', '$defs', 'nullable']);
/** Keywords whose values are schemas used as such (closed when they are objects). */
const SITE_MAPS = new Set(['properties', 'patternProperties', 'dependentSchemas']);
const SITES = new Set(['items', 'additionalProperties', 'contains', 'unevaluatedProperties', 'unevaluatedItems', 'additionalItems', 'propertyNames', 'contentSchema']);
/** Keywords whose schemas apply in place to the same value: never closed on their own. */
const IN_PLACE_LISTS = new Set(['allOf', 'anyOf', 'oneOf']);
const IN_PLACE = new Set(['not', 'if', 'then', 'else']);
const PASSED = new Set([
  'type', 'enum', 'const', 'multipleOf', 'maximum', 'minimum', 'maxLength', 'minLength', 'pattern', 'maxItems', 'minItems',
  'uniqueItems', 'maxContains', 'minContains', 'maxProperties', 'minProperties', 'required', 'dependentRequired', 'format',
  'title', 'description', 'default', 'deprecated', 'readOnly', 'writeOnly', 'examples', 'contentMediaType', 'contentEncoding',
  'exclusiveMinimum', 'exclusiveMaximum', '$ref', 'prefixItems', 'dependencies',
]);

export interface SchemaProblem {
  readonly path: ConfigPath;
  readonly message: string;
}

/** One ajv per document (and one for parameters, which coerce strings to their types). */
export class RequestSchemas {
  readonly #doc: OpenApiDocument;
  readonly #defs = new Map<string, string>();
  readonly #defSchemas: Record<string, Json> = {};
  readonly #pending: { key: string; at: SchemaAt }[] = [];
  /** Where each definition comes from, for its errors. */
  readonly #defPaths = new Map<string, ConfigPath>();
  #broken = false;
  readonly problems: SchemaProblem[] = [];
  /** Formats the document uses that no validator knows: not checked (logged at load). */
  readonly unknownFormats = new Set<string>();
  #body: Ajv2020 | undefined;
  #params: Ajv2020 | undefined;
  #knownFormats: Set<string> | undefined;

  constructor(doc: OpenApiDocument) {
    this.#doc = doc;
  }

  /** Converts a schema used as a whole (a body, a parameter); its definitions follow on `compile`. */
  convert(at: SchemaAt): Json {
    return this.#convert(at.schema, at.path, true);
  }

  /** Compiles converted schemas; call after every `convert`. */
  compile(schema: Json, coerce: boolean, at: ConfigPath): ValidateFunction | undefined {
    if (this.#broken) return undefined;
    try {
      const ajv = this.#ajv(coerce);
      if (ajv === undefined) return undefined;
      return ajv.compile(schema as object);
    } catch (error) {
      this.problems.push({ path: at, message: `the schema cannot be compiled: ${(error as Error).message}` });
      return undefined;
    }
  }

  #ajv(coerce: boolean): Ajv2020 | undefined {
    const existing = coerce ? this.#params : this.#body;
    if (existing !== undefined) return existing;
    this.#drain();
    if (!this.#checkDefinitions()) {
      this.#broken = true;
      return undefined;
    }
    const ajv = new Ajv2020({
      allErrors: true,
      // A property named `constructor` or `toString` is never found on the prototype.
      ownProperties: true,
      strict: false,
      coerceTypes: coerce ? 'array' : false,
      useDefaults: false,
      unicodeRegExp: true,
      // Request data is hostile: keep ajv from building error messages that quote it.
      messages: true,
      verbose: false,
    });
    addFormats(ajv, { mode: 'full' });
    ajv.addKeyword({ keyword: READ_ONLY, schemaType: 'boolean', errors: true, validate: () => false });
    ajv.addSchema({ $id: DEFS_ID, $defs: this.#defSchemas as Record<string, object> });
    if (coerce) this.#params = ajv;
    else this.#body = ajv;
    return ajv;
  }

  #drain(): void {
    while (this.#pending.length > 0) {
      const { key, at } = this.#pending.shift()!;
      this.#defPaths.set(key, at.path);
      this.#defSchemas[key] = this.#convert(at.schema, at.path, false);
    }
  }

  /**
   * Each definition must be a valid schema (reported at its own place in the document), and none
   * may reach itself without consuming data (`A: { allOf: [{ $ref: A }] }` would recurse forever
   * on every request).
   */
  #checkDefinitions(): boolean {
    const probe = new Ajv2020({ strict: false });
    probe.addKeyword({ keyword: READ_ONLY, schemaType: 'boolean' });
    let ok = true;
    for (const [key, schema] of Object.entries(this.#defSchemas)) {
      if (!probe.validateSchema(schema as object)) {
        ok = false;
        const first = probe.errors?.[0];
        this.problems.push({ path: this.#defPaths.get(key) ?? [], message: `not a valid schema: ${first === undefined ? 'invalid' : `${first.instancePath || '/'} ${first.message ?? ''}`.trim()}` });
      }
    }
    const inPlace = new Map<string, string[]>();
    for (const [key, schema] of Object.entries(this.#defSchemas)) inPlace.set(key, inPlaceRefs(schema));
    const state = new Map<string, 1 | 2>();
    const visit = (key: string): boolean => {
      if (state.get(key) === 2) return true;
      if (state.get(key) === 1) return false;
      state.set(key, 1);
      for (const next of inPlace.get(key) ?? []) {
        if (!visit(next)) return false;
      }
      state.set(key, 2);
      return true;
    };
    for (const key of inPlace.keys()) {
      if (!visit(key)) {
        ok = false;
        this.problems.push({ path: this.#defPaths.get(key) ?? [], message: 'the schema refers to itself without nesting (through $ref, allOf, anyOf, oneOf, not, if/then/else): it could never be checked' });
        break;
      }
    }
    return ok;
  }

  #ref(ref: string, path: ConfigPath): string | undefined {
    const known = this.#defs.get(ref);
    if (known !== undefined) return known;
    if (!ref.startsWith('#/')) {
      this.problems.push({ path, message: `only local references (#/…) are supported, not '${ref}'` });
      return undefined;
    }
    const target = this.#doc.lookup(ref);
    if (target === undefined) {
      this.problems.push({ path, message: `the reference '${ref}' points at nothing in this document` });
      return undefined;
    }
    const key = `d${this.#defs.size}`;
    this.#defs.set(ref, key);
    this.#pending.push({ key, at: target });
    return key;
  }

  #formats(): Set<string> {
    if (this.#knownFormats === undefined) {
      const probe = new Ajv2020();
      addFormats(probe, { mode: 'full' });
      this.#knownFormats = new Set(Object.keys((probe as unknown as { formats: Record<string, unknown> }).formats));
    }
    return this.#knownFormats;
  }

  #convert(node: Json, path: ConfigPath, site: boolean): Json {
    if (typeof node === 'boolean') return node;
    if (!isObject(node)) {
      this.problems.push({ path, message: 'expected a schema (a mapping or a boolean)' });
      return true;
    }
    const v30 = this.#doc.version === '3.0';
    if (node.readOnly === true) return { [READ_ONLY]: true };
    const out: JsonObject = {};
    if (typeof node.$ref === 'string') {
      const key = this.#ref(node.$ref, [...path, '$ref']);
      if (key === undefined) return true;
      out.$ref = `${DEFS_ID}#/$defs/${key}`;
      // OpenAPI 3.0 ignores everything beside a $ref; 3.1 (JSON Schema 2020-12) applies it too.
      if (v30) {
        if (site) out.unevaluatedProperties = false;
        return out;
      }
    }
    for (const [keyword, value] of Object.entries(node)) {
      if (keyword === '$ref' || keyword.startsWith('x-') || DROPPED.has(keyword)) continue;
      const at = [...path, keyword];
      if (SITE_MAPS.has(keyword) && isObject(value)) {
        const mapped: JsonObject = {};
        // dependentSchemas apply to the object itself, not to a property of it. Defined, not
        // assigned: a property named `__proto__` stays a property.
        for (const [name, sub] of Object.entries(value)) {
          Object.defineProperty(mapped, name, { value: this.#convert(sub, [...at, name], keyword !== 'dependentSchemas'), enumerable: true, writable: true, configurable: true });
        }
        out[keyword] = mapped;
      } else if (SITES.has(keyword) || (keyword === 'items' && !Array.isArray(value))) {
        out[keyword] = typeof value === 'boolean' ? value : this.#convert(value, at, keyword !== 'propertyNames');
      } else if ((IN_PLACE_LISTS.has(keyword) || keyword === 'prefixItems' || keyword === 'items') && Array.isArray(value)) {
        const site = keyword === 'prefixItems' || keyword === 'items';
        out[keyword === 'items' ? 'prefixItems' : keyword] = value.map((sub, i) => this.#convert(sub, [...at, i], site));
      } else if (IN_PLACE.has(keyword)) {
        out[keyword] = this.#convert(value, at, false);
      } else if (keyword === 'format') {
        if (typeof value === 'string' && this.#formats().has(value)) out.format = value;
        else this.unknownFormats.add(String(value));
      } else if (keyword === 'exclusiveMinimum' || keyword === 'exclusiveMaximum') {
        if (typeof value === 'number') out[keyword] = value;
        // 3.0: a boolean that turns `minimum`/`maximum` exclusive.
        else if (value === true) {
          const bound = node[keyword === 'exclusiveMinimum' ? 'minimum' : 'maximum'];
          if (typeof bound === 'number') out[keyword] = bound;
        }
      } else if (keyword === 'required' && Array.isArray(value)) {
        // A readOnly property is required in responses only (OpenAPI 3.0 §4.7.25.1).
        const properties = isObject(node.properties) ? node.properties : {};
        out.required = value.filter((name) => typeof name !== 'string' || !this.#isReadOnly(properties[name]));
      } else if (PASSED.has(keyword)) {
        out[keyword] = value;
      }
    }
    if (node.exclusiveMinimum === true && typeof out.exclusiveMinimum === 'number') delete out.minimum;
    if (node.exclusiveMaximum === true && typeof out.exclusiveMaximum === 'number') delete out.maximum;
    if (v30 && node.nullable === true && typeof out.type === 'string') {
      out.type = [out.type, 'null'];
      if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
    }
    if (site && out.additionalProperties === undefined && out.unevaluatedProperties === undefined && mayBeObject(out)) out.unevaluatedProperties = false;
    return out;
  }

  #isReadOnly(schema: Json | undefined): boolean {
    let node = schema;
    for (let i = 0; i < 8 && isObject(node) && typeof node.$ref === 'string'; i++) node = this.#doc.lookup(node.$ref)?.schema;
    return isObject(node) && node.readOnly === true;
  }
}

/** Definitions a converted schema applies to the same value (not to a property or an item of it). */
function inPlaceRefs(schema: Json): string[] {
  const out: string[] = [];
  const stack: Json[] = [schema];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (!isObject(node)) continue;
    if (typeof node.$ref === 'string' && node.$ref.startsWith(`${DEFS_ID}#/$defs/`)) out.push(node.$ref.slice(DEFS_ID.length + 8));
    for (const keyword of ['allOf', 'anyOf', 'oneOf'] as const) {
      const list = node[keyword];
      if (Array.isArray(list)) stack.push(...list);
    }
    for (const keyword of ['not', 'if', 'then', 'else'] as const) if (node[keyword] !== undefined) stack.push(node[keyword]!);
    if (isObject(node.dependentSchemas)) stack.push(...Object.values(node.dependentSchemas));
  }
  return out;
}

function mayBeObject(schema: JsonObject): boolean {
  const type = schema.type;
  if (type === undefined) return true;
  return type === 'object' || (Array.isArray(type) && type.includes('object'));
}

/** Resolves `$ref`s (at most a few hops) to the schema they name. */
export function resolveSchema(doc: OpenApiDocument, schema: Json | undefined): Json | undefined {
  let node = schema;
  for (let i = 0; i < 16 && isObject(node) && typeof node.$ref === 'string'; i++) node = doc.lookup(node.$ref)?.schema;
  return node;
}

export interface ValidationError {
  readonly pointer: string;
  readonly detail: string;
}

/** Most errors listed in one answer. */
export const MAX_ERRORS = 20;

/**
 * ajv's errors as `{ pointer, detail }`, with the pointer into the request (`/body/tags/0`,
 * `/query/limit`). Details come from the schema's side only: the offending value is never quoted.
 */
export function toValidationErrors(errors: readonly ErrorObject[] | null | undefined, base: string, out: ValidationError[]): void {
  if (errors === null || errors === undefined) return;
  for (const error of errors) {
    if (out.length >= MAX_ERRORS) return;
    const params = error.params as Record<string, unknown>;
    let pointer = base + error.instancePath;
    let detail: string;
    switch (error.keyword) {
      case 'required':
        pointer += `/${escapePointer(String(params.missingProperty))}`;
        detail = 'is required';
        break;
      case 'unevaluatedProperties':
        pointer += `/${escapePointer(String(params.unevaluatedProperty))}`;
        detail = 'is not a declared property';
        break;
      case 'additionalProperties':
        pointer += `/${escapePointer(String(params.additionalProperty))}`;
        detail = 'is not a declared property';
        break;
      case READ_ONLY:
        detail = 'is read-only';
        break;
      case 'enum': {
        const allowed = (params.allowedValues as unknown[] | undefined) ?? [];
        const shown = allowed.slice(0, 10).map((v) => JSON.stringify(v)).join(', ');
        detail = `must be one of ${shown}${allowed.length > 10 ? ', …' : ''}`;
        break;
      }
      case 'anyOf':
      case 'oneOf':
        // The branches' own errors say more; this one only when it is alone.
        if (errors.length > 1) continue;
        detail = error.message ?? 'is not valid';
        break;
      case 'if':
        continue;
      default:
        detail = error.message ?? 'is not valid';
    }
    if (out.some((e) => e.pointer === pointer && e.detail === detail)) continue;
    out.push({ pointer: truncate(pointer), detail });
  }
}

/** Request names can be long: a pointer never carries more than 200 characters of them. */
function truncate(pointer: string): string {
  return pointer.length > 200 ? `${pointer.slice(0, 199)}…` : pointer;
}
