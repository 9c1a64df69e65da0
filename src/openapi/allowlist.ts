import { isObject, type Json, type JsonObject, type OpenApiDocument } from './document.js';

/**
 * The response allowlist: what of a JSON answer the response schema declares. Built once per
 * schema at load (recursive schemas share their plans), applied per response in place: every
 * property the schema does not declare is deleted, and so is every `writeOnly` one.
 *
 * Composition is read generously: a property declared by any part of `allOf`, `anyOf`, `oneOf`,
 * `if`/`then`/`else` or a `$ref` is kept. An object is open only where its schema says so
 * (`additionalProperties: true` or a schema, `patternProperties`); an object schema that says
 * nothing (`type: object`) declares no properties, the same rule as for requests.
 */

export interface Plan {
  /** Nothing is said about structure: keep the value as it is. */
  keep: boolean;
  objects: ObjectPart[];
  items: Plan[];
  prefixItems: Plan[][];
}

interface ObjectPart {
  readonly props: Map<string, Plan>;
  readonly patterns: [RegExp, Plan][];
  /** Plan for undeclared properties; null: they are removed. */
  readonly rest: Plan | null;
}

const KEEP: Plan = Object.freeze({ keep: true, objects: [], items: [], prefixItems: [] }) as Plan;

export class PlanBuilder {
  readonly #doc: OpenApiDocument;
  readonly #memo = new Map<object, Plan>();

  constructor(doc: OpenApiDocument) {
    this.#doc = doc;
  }

  plan(schema: Json | undefined): Plan {
    if (schema === undefined || typeof schema === 'boolean' || !isObject(schema)) return KEEP;
    const known = this.#memo.get(schema);
    if (known !== undefined) return known;
    const plan: Plan = { keep: false, objects: [], items: [], prefixItems: [] };
    // Registered before its parts are built: a recursive schema finds its own plan.
    this.#memo.set(schema, plan);
    let typed = false;
    this.#collect(schema, plan, new Set(), (t) => (typed ||= t));
    plan.keep = !typed && plan.objects.length === 0 && plan.items.length === 0 && plan.prefixItems.length === 0;
    return plan;
  }

  /** Adds the structure `schema` declares (and the parts applying in place with it) to `plan`. */
  #collect(schema: Json, plan: Plan, visiting: Set<object>, typed: (t: boolean) => void): void {
    if (!isObject(schema) || visiting.has(schema)) return;
    visiting.add(schema);
    if (typeof schema.$ref === 'string') {
      const target = this.#doc.lookup(schema.$ref);
      if (target !== undefined) this.#collect(target.schema, plan, visiting, typed);
      if (this.#doc.version === '3.0') return;
    }
    if (schema.type !== undefined) typed(true);
    const objectish = schema.properties !== undefined || schema.additionalProperties !== undefined || schema.patternProperties !== undefined || schema.unevaluatedProperties !== undefined || schema.type === 'object' || (Array.isArray(schema.type) && schema.type.includes('object'));
    if (objectish) {
      const props = new Map<string, Plan>();
      if (isObject(schema.properties)) {
        for (const [name, sub] of Object.entries(schema.properties)) {
          if (this.#writeOnly(sub)) continue;
          props.set(name, this.plan(sub));
        }
      }
      const patterns: [RegExp, Plan][] = [];
      if (isObject(schema.patternProperties)) {
        for (const [pattern, sub] of Object.entries(schema.patternProperties)) {
          try {
            patterns.push([new RegExp(pattern, 'u'), this.plan(sub)]);
          } catch {
            // An invalid pattern declares nothing.
          }
        }
      }
      const open = schema.additionalProperties ?? schema.unevaluatedProperties;
      const rest = open === true ? KEEP : isObject(open) ? this.plan(open) : null;
      plan.objects.push({ props, patterns, rest });
    }
    if (schema.items !== undefined) {
      if (Array.isArray(schema.items)) plan.prefixItems.push(schema.items.map((s) => this.plan(s)));
      else plan.items.push(this.plan(schema.items));
    }
    if (Array.isArray(schema.prefixItems)) plan.prefixItems.push(schema.prefixItems.map((s) => this.plan(s)));
    for (const keyword of ['allOf', 'anyOf', 'oneOf'] as const) {
      const list = schema[keyword];
      if (Array.isArray(list)) for (const sub of list) this.#collect(sub, plan, visiting, typed);
    }
    for (const keyword of ['then', 'else'] as const) if (schema[keyword] !== undefined) this.#collect(schema[keyword]!, plan, visiting, typed);
    visiting.delete(schema);
  }

  #writeOnly(schema: Json): boolean {
    let node: Json | undefined = schema;
    for (let i = 0; i < 8 && isObject(node) && typeof node.$ref === 'string'; i++) node = this.#doc.lookup(node.$ref)?.schema;
    return isObject(node) && node.writeOnly === true;
  }
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Most removed paths reported per response (the count is always exact). */
const MAX_REPORTED = 20;

export interface Removed {
  count: number;
  paths: string[];
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
      for (let i = 0; i < node.length; i++) {
        const children: Plan[] = [];
        for (const p of plans) {
          for (const prefix of p.prefixItems) if (i < prefix.length) children.push(prefix[i]!);
          if (p.prefixItems.every((prefix) => i >= prefix.length)) children.push(...p.items);
        }
        // An array schema that says nothing of its items keeps them.
        if (children.length > 0) stack.push({ value: node[i], plans: children, path: `${path}[${i}]` });
      }
      continue;
    }
    const object = node as JsonObject;
    const parts = plans.flatMap((p) => p.objects);
    for (const key of Object.keys(object)) {
      const children: Plan[] = [];
      for (const part of parts) {
        const declared = part.props.get(key);
        if (declared !== undefined) {
          children.push(declared);
          continue;
        }
        let matched = false;
        for (const [pattern, sub] of part.patterns) {
          if (pattern.test(key)) {
            children.push(sub);
            matched = true;
          }
        }
        if (!matched && part.rest !== null) children.push(part.rest);
      }
      // The JSON path the other response filters report (`$.items[0].internalNotes`).
      const childPath = path.length > 200 ? path : IDENTIFIER.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key.slice(0, 64))}]`;
      if (children.length === 0) {
        delete object[key];
        removed ??= { count: 0, paths: [] };
        removed.count++;
        if (removed.paths.length < MAX_REPORTED) removed.paths.push(childPath);
      } else stack.push({ value: object[key], plans: children, path: childPath });
    }
  }
  return removed;
}
