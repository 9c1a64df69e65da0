import type { BufferedResponse, RequestContext } from '../../gateway/context.js';
import { definePolicy } from '../define.js';
import { enqueue, pathOf, summarizePaths, walkJson } from '../json-walk.js';
import { RedactSchema } from './schema.js';

/** `API-Key`, `api_key` and `apiKey` are one name: lowercase, without `_` and `-`. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[-_]/g, '');
}

/**
 * A matcher for field names, precompiled: most keys of an answer are ruled out by their length
 * and first letter before any string is built for them.
 */
export function compileNames(names: readonly string[]): (key: string) => boolean {
  const set = new Set(names.map(normalizeName));
  if (set.has('')) throw new Error('a redacted field name must have a letter or digit');
  let min = Infinity;
  let max = 0;
  const first = new Set<number>();
  for (const name of set) {
    min = Math.min(min, name.length);
    max = Math.max(max, name.length);
    first.add(name.charCodeAt(0));
  }
  // Separators may lengthen a key (`p_a_s_s_w_o_r_d`), never shorten it.
  const longest = max * 2;
  return (key) => {
    const n = key.length;
    if (n < min || n > longest) return false;
    const c = key.charCodeAt(0);
    if (c !== 95 && c !== 45 && !first.has(c >= 65 && c <= 90 ? c + 32 : c)) return false;
    return set.has(normalizeName(key));
  };
}

export const MASK = '[REDACTED]';

/** Removes (or masks) every matching field of `root`, in place; returns their JSON paths. */
export function redactJson(root: unknown, matches: (key: string) => boolean, mask: boolean): readonly string[] {
  // One walk; nothing is allocated for an answer without a match (the common case).
  let paths: string[] | undefined;
  walkJson(root, (node, index) => {
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const item = node[i];
        if (item !== null && typeof item === 'object') enqueue(item, index, i);
      }
      return;
    }
    for (const key in node) {
      if (matches(key)) {
        (paths ??= []).push(pathOf(index, key));
        // A removed field is not looked into: all of it goes.
        if (mask) node[key] = MASK;
        else delete node[key];
        continue;
      }
      const value = node[key];
      if (value !== null && typeof value === 'object') enqueue(value, index, key);
    }
  });
  return paths ?? NONE;
}

const NONE: readonly string[] = Object.freeze([]);

/**
 * Sensitive field names removed from the upstream's JSON answers at any depth (respond phase, on
 * by default). Only proxied answers: the identity service's own endpoints return tokens by design.
 */
export const redactPolicy = definePolicy({
  name: 'redact',
  phase: 'respond',
  priority: 500,
  enabledByDefault: true,
  description: 'Removes sensitive fields (password, secret, token, apiKey, …) at any depth of upstream JSON answers, with a `response_redacted` event.',
  schema: RedactSchema,
  create(options, pctx) {
    // Built-in routes (identity, OAuth) and unmatched requests have no upstream answer to filter.
    if (!pctx.proxied) return {};
    const matches = compileNames([...options.names, ...options.fields]);
    const mask = options.mode === 'mask';
    const events = pctx.events;
    return {
      responseBody(ctx: RequestContext, response: BufferedResponse) {
        const paths = redactJson(response.json, matches, mask);
        if (paths.length === 0) return;
        response.changed = true;
        events.emit({
          type: 'response_redacted',
          level: 'WARN',
          description: `sensitive fields ${mask ? 'masked in' : 'removed from'} the upstream answer`,
          requestId: ctx.requestId,
          clientIp: ctx.clientIp,
          route: ctx.route.name,
          ...(ctx.consumer !== undefined ? { actor: ctx.consumer.id } : {}),
          data: { filter: 'redact', count: paths.length, paths: summarizePaths(paths), status: response.status },
        });
      },
    };
  },
});
