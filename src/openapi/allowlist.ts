import type { ConfigPath } from '../config/errors.js';
import { isObject, type Json, type JsonObject, type OpenApiDocument } from './document.js';
import { pathSegment } from '../policies/json-walk.js';

/**
 * The response allowlist: what of a JSON answer the response schema declares. Built once per
 * schema at load (recursive schemas share their plans), applied per response in place: every
 * property the schema does not declare is deleted, and so is every `writeOnly` one.
 *
 * Composition is read generously: a property declared by any part of `allOf`, `anyOf`, `oneOf`,
 * `if`/`then`/`else` or a `$ref` is kept. An object is open only where its schema says so
 * (`additionalProperties: true` or a schema, `patternProperties`); a schema that says nothing
 * about objects (`{}`, `type: object`) declares no properties — the same rule as for requests.
 * Arrays where the schema does not allow an array lose their items; `writeOnly` anywhere in a
 * property's schema (beside a `$ref`, in one branch of a union) removes the property.
 */

export interface Plan {
  /** No schema at all (a media type without one): the value is kept as it is. */
  keep: boolean;
  /** The schema is `writeOnly`: the value never goes out. */
  drop: boolean;
  objects: ObjectPart[];
  items: Plan[];
  prefixItems: Plan[][];
  /** The schema allows arrays whatever their items (untyped, or `type: array` without `items`). */
  anyItems: boolean;
}

interface ObjectPart {
  readonly props: Map<string, Plan>;
  readonly patterns: [RegExp, Plan][];
  /** Plan for undeclared properties; null: they are removed. */
  readonly rest: Plan | null;
}

const KEEP: Plan = Object.freeze({ keep: true, drop: false, objects: [], items: [], prefixItems: [], anyItems: true }) as Plan;
const DROP: Plan = Object.freeze({ keep: false, drop: true, objects: [], items: [], prefixItems: [], anyItems: false }) as Plan;
const CLOSED: ObjectPart = Object.freeze({ props: new Map(), patterns: [], rest: null });

export class PlanBuilder {
  readonly #doc: OpenApiDocument;
  readonly #memo = new Map<object, Plan>();
  /** References that point nowhere (or elsewhere): config errors, as for requests. */
  readonly problems: { path: ConfigPath; message: string }[] = [];

  constructor(doc: OpenApiDocument) {
    this.#doc = doc;
  }

  plan(schema: Json | undefined, path: ConfigPath = []): Plan {
    if (schema === undefined || schema === true) return KEEP;
    if (!isObject(schema)) return DROP;
    const known = this.#memo.get(schema);
    if (known !== undefined) return known;
    if (this.#writeOnly(schema, new Set())) {
      this.#memo.set(schema, DROP);
      return DROP;
    }
    const plan: Plan = { keep: false, drop: false, objects: [], items: [], prefixItems: [], anyItems: false };
    // Registered before its parts are built: a recursive schema finds its own plan.
    this.#memo.set(schema, plan);
    const types = new Set<string>();
    let typed = false;
    this.#collect(schema, path, plan, new Set(), (t) => {
      typed = true;
      for (const name of Array.isArray(t) ? t : [t]) if (typeof name === 'string') types.add(name);
    });
    if (plan.objects.length === 0 && (!typed || types.has('object'))) plan.objects.push(CLOSED);
    plan.anyItems = plan.items.length === 0 && plan.prefixItems.length === 0 && (!typed || types.has('array'));
    return plan;
  }

  /** Adds the structure `schema` declares (and the parts applying in place with it) to `plan`. */
  #collect(schema: Json, path: ConfigPath, plan: Plan, seen: Set<object>, typed: (t: Json) => void): void {
    // Each schema is collected once per plan: diamonds of allOf cost their size, not 2^depth.
    if (!isObject(schema) || seen.has(schema)) return;
    seen.add(schema);
    if (typeof schema.$ref === 'string') {
      const target = this.#resolve(schema.$ref, [...path, '$ref']);
      if (target !== undefined) this.#collect(target.schema, target.path, plan, seen, typed);
      if (this.#doc.version === '3.0') return;
    }
    if (schema.type !== undefined) typed(schema.type);
    const objectish = schema.properties !== undefined || schema.additionalProperties !== undefined || schema.patternProperties !== undefined || schema.unevaluatedProperties !== undefined;
    if (objectish) {
      const props = new Map<string, Plan>();
      if (isObject(schema.properties)) {
        for (const [name, sub] of Object.entries(schema.properties)) props.set(name, this.plan(sub, [...path, 'properties', name]));
      }
      const patterns: [RegExp, Plan][] = [];
      if (isObject(schema.patternProperties)) {
        for (const [pattern, sub] of Object.entries(schema.patternProperties)) {
          try {
            patterns.push([new RegExp(pattern, 'u'), this.plan(sub, [...path, 'patternProperties', pattern])]);
          } catch {
            // An invalid pattern declares nothing.
          }
        }
      }
      const open = schema.additionalProperties ?? schema.unevaluatedProperties;
      const rest = open === true ? KEEP : isObject(open) ? this.plan(open, [...path, 'additionalProperties']) : null;
      plan.objects.push({ props, patterns, rest });
    }
    if (schema.items !== undefined) {
      if (Array.isArray(schema.items)) plan.prefixItems.push(schema.items.map((s, i) => this.plan(s, [...path, 'items', i])));
      else plan.items.push(this.plan(schema.items, [...path, 'items']));
    }
    if (Array.isArray(schema.prefixItems)) plan.prefixItems.push(schema.prefixItems.map((s, i) => this.plan(s, [...path, 'prefixItems', i])));
    for (const keyword of ['allOf', 'anyOf', 'oneOf'] as const) {
      const list = schema[keyword];
      if (Array.isArray(list)) list.forEach((sub, i) => this.#collect(sub, [...path, keyword, i], plan, seen, typed));
    }
    for (const keyword of ['then', 'else'] as const) if (schema[keyword] !== undefined) this.#collect(schema[keyword]!, [...path, keyword], plan, seen, typed);
  }

  #resolve(ref: string, path: ConfigPath): { schema: Json; path: ConfigPath } | undefined {
    const target = ref.startsWith('#') ? this.#doc.lookup(ref) : undefined;
    if (target === undefined) {
      this.problems.push({ path, message: ref.startsWith('#') ? `the reference '${ref}' points at nothing in this document` : `only local references (#/…) are supported, not '${ref}'` });
    }
    return target;
  }

  /** `writeOnly` on the schema, beside or behind its `$ref`, or in any branch of its composition. */
  #writeOnly(schema: Json, seen: Set<object>): boolean {
    if (!isObject(schema) || seen.has(schema)) return false;
    seen.add(schema);
    if (schema.writeOnly === true) return true;
    if (typeof schema.$ref === 'string') {
      const target = this.#doc.lookup(schema.$ref);
      if (target !== undefined && this.#writeOnly(target.schema, seen)) return true;
    }
    for (const keyword of ['allOf', 'anyOf', 'oneOf'] as const) {
      const list = schema[keyword];
      if (Array.isArray(list) && list.some((sub) => this.#writeOnly(sub, seen))) return true;
    }
    return false;
  }
}

/** Most removed paths reported per response (the count is always exact). */
const MAX_REPORTED = 20;

export interface Removed {
  count: number;
  paths: string[];
}

function record(removed: Removed | undefined, path: string): Removed {
  removed ??= { count: 0, paths: [] };
  removed.count++;
  if (removed.paths.length < MAX_REPORTED) removed.paths.push(path);
  return removed;
}

function addPlan(list: Plan[], plan: Plan): void {
  // The same plan reached through several parts counts once: no doubling at every level.
  if (!list.includes(plan)) list.push(plan);
}

/**
 * Removes from `value` what `plan` does not declare. Iterative: a deep answer cannot exhaust the
 * stack. Returns what was removed, or undefined when nothing was.
 */
export function applyPlan(value: unknown, plan: Plan): Removed | undefined {
  if (plan.keep) return undefined;
  let removed: Removed | undefined;
  const stack: { value: unknown; plans: Plan[]; path: string }[] = [{ value, plans: [plan], path: '$' }];
  while (stack.length > 0) {
    const { value: node, plans, path } = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (plans.some((p) => p.keep)) continue;
    if (Array.isArray(node)) {
      if (plans.some((p) => p.anyItems)) continue;
      let kept = 0;
      for (let i = 0; i < node.length; i++) {
        const children: Plan[] = [];
        for (const p of plans) {
          for (const prefix of p.prefixItems) if (i < prefix.length) addPlan(children, prefix[i]!);
          if (p.prefixItems.every((prefix) => i >= prefix.length)) for (const item of p.items) addPlan(children, item);
        }
        // No plan takes this item (the schema does not allow an array here, or not this long), or
        // it is writeOnly: it goes.
        if (children.length === 0 || children.some((c) => c.drop)) {
          removed = record(removed, path + pathSegment(i));
          continue;
        }
        node[kept] = node[i];
        stack.push({ value: node[kept], plans: children, path: path + pathSegment(kept) });
        kept++;
      }
      node.length = kept;
      continue;
    }
    const object = node as JsonObject;
    const parts: ObjectPart[] = [];
    for (const p of plans) for (const part of p.objects) if (!parts.includes(part)) parts.push(part);
    for (const key of Object.keys(object)) {
      const children: Plan[] = [];
      for (const part of parts) {
        const declared = part.props.get(key);
        if (declared !== undefined) {
          addPlan(children, declared);
          continue;
        }
        let matched = false;
        for (const [pattern, sub] of part.patterns) {
          if (pattern.test(key)) {
            addPlan(children, sub);
            matched = true;
          }
        }
        if (!matched && part.rest !== null) addPlan(children, part.rest);
      }
      // The JSON path the other response filters report (`$.items[0].internalNotes`).
      const childPath = path.length > 200 ? path : path + pathSegment(key);
      if (children.length === 0 || children.some((c) => c.drop)) {
        delete object[key];
        removed = record(removed, childPath);
      } else stack.push({ value: object[key], plans: children, path: childPath });
    }
  }
  return removed;
}
