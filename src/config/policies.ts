import type { ValidateFunction } from 'ajv';
import type { RampartConfig, RouteConfig } from './schema.js';
import { didYouMean, type ConfigIssue, type ConfigPath } from './errors.js';
import { createAjv, type Source } from './load.js';
import { builtinPolicies } from '../policies/index.js';
import { PHASES, type PolicyDefinition } from '../policies/define.js';

const validators = new WeakMap<PolicyDefinition, ValidateFunction>();
let ajv: ReturnType<typeof createAjv> | undefined;

/** Validates (and fills defaults into) policy options. Callers pass a copy. */
function validator(definition: PolicyDefinition): ValidateFunction {
  let fn = validators.get(definition);
  if (fn === undefined) {
    // The root `default: {}` is for the docs; ajv's strict mode refuses a default at the root.
    const { default: _rootDefault, ...schema } = definition.schema;
    fn = (ajv ??= createAjv(true)).compile(schema);
    validators.set(definition, fn);
  }
  return fn;
}

/** A policy as one route runs it: its definition, its merged options and where they came from. */
export interface ResolvedPolicy {
  readonly definition: PolicyDefinition;
  readonly options: Record<string, unknown>;
  /** Config path of the options (the route's override when there is one, else the defaults). */
  readonly path: ConfigPath;
}

/** Checks every policy block in `defaults` and in each route against its policy's schema. */
export function validatePolicies(config: RampartConfig, source: Source, issues: ConfigIssue[]): void {
  // The shape around the blocks may be wrong here (this runs even when the core schema failed).
  if (isObject(config.defaults)) checkBlock(config.defaults, ['defaults'], source, issues);
  const routes: unknown[] = Array.isArray(config.routes) ? config.routes : [];
  routes.forEach((route, i) => {
    if (isObject(route) && isObject(route.policies)) checkBlock(route.policies, ['routes', i, 'policies'], source, issues);
  });
  if (issues.length > 0) return;
  // Pieces are valid on their own; the merged options must be too (a required option may be
  // given in neither place).
  for (const [i, route] of config.routes.entries()) {
    for (const resolved of resolvePolicies(config, route, i)) {
      const fn = validator(resolved.definition);
      if (!fn(structuredClone(resolved.options))) {
        for (const error of fn.errors ?? []) issues.push(source.fromAjv(error, resolved.path));
      }
    }
  }
}

function checkBlock(block: Record<string, unknown>, base: ConfigPath, source: Source, issues: ConfigIssue[]): void {
  for (const [name, value] of Object.entries(block)) {
    const definition = builtinPolicies.get(name);
    if (definition === undefined) {
      const suggestion = didYouMean(name, builtinPolicies.keys());
      const hint = suggestion !== undefined ? ` (did you mean '${suggestion}'?)` : `; known policies: ${[...builtinPolicies.keys()].join(', ')}`;
      issues.push(source.issue([...base, name], `unknown policy '${name}'${hint}`, true));
      continue;
    }
    if (value === false) continue;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      issues.push(source.issue([...base, name], `expected a mapping of '${name}' options or false`));
      continue;
    }
    // A piece may leave out what the other piece (defaults or route) gives: `required` is checked
    // on the merged options below.
    const fn = validator(definition);
    if (!fn(structuredClone(value))) {
      for (const error of fn.errors ?? []) if (error.keyword !== 'required') issues.push(source.fromAjv(error, [...base, name]));
    }
  }
}

/**
 * The policies a route runs, in execution order: phase, then priority (higher first), then name.
 * Defaults apply unless the route says `false`; a route's object merges into the default options.
 * `route` undefined resolves the fallback used for requests no route matches; `builtin` is for the
 * gateway's own routes.
 */
export function resolvePolicies(config: RampartConfig, route: RouteConfig | undefined, index = -1, builtin = false): ResolvedPolicy[] {
  const out: ResolvedPolicy[] = [];
  for (const definition of builtinPolicies.values()) {
    const name = definition.name;
    // Built-in routes (identity) authenticate and authorize by themselves: `defaults` give them
    // everything else (headers, CORS, limits, logs) but never an authentication or access rule.
    const own = builtin && (definition.phase === 'authenticate' || definition.phase === 'authorize' || name === 'consumer-token');
    const fromDefaults = own ? undefined : config.defaults[name];
    const fromRoute = route?.policies[name];
    if (fromRoute === false || (fromRoute === undefined && fromDefaults === false)) continue;
    if (fromRoute === undefined && fromDefaults === undefined && !definition.enabledByDefault) continue;
    const base = isObject(fromDefaults) ? fromDefaults : {};
    const options = isObject(fromRoute) ? merge(base, fromRoute) : structuredClone(base);
    const path: ConfigPath = fromRoute !== undefined ? ['routes', index, 'policies', name] : fromDefaults !== undefined ? ['defaults', name] : [];
    out.push({ definition, options, path });
  }
  return out.sort(comparePolicies);
}

export function comparePolicies(a: { definition: PolicyDefinition }, b: { definition: PolicyDefinition }): number {
  const pa = PHASES.indexOf(a.definition.phase);
  const pb = PHASES.indexOf(b.definition.phase);
  if (pa !== pb) return pa - pb;
  if (a.definition.priority !== b.definition.priority) return b.definition.priority - a.definition.priority;
  return a.definition.name < b.definition.name ? -1 : a.definition.name > b.definition.name ? 1 : 0;
}

/** Applies a policy's defaults to merged options (they were validated at load). */
export function withPolicyDefaults(definition: PolicyDefinition, options: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(options);
  validator(definition)(copy);
  return copy;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Objects merge key by key, recursively; anything else (arrays included) replaces. */
function merge(base: Record<string, unknown>, override: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = structuredClone(base);
  for (const [key, value] of Object.entries(override)) {
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') continue;
    const current = out[key];
    out[key] = isObject(current) && isObject(value) ? merge(current, value) : structuredClone(value);
  }
  return out;
}
