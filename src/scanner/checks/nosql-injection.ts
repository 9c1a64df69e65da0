import type { ScanRequest, ScanResponse } from '../http.js';
import type { Check, Endpoint, Finding, ScanContext } from '../types.js';
import { findingAt, beginInjection, isStringLike, MAX_POINTS, nonsense, operationKey, pointLabel, requestWith, sampleBody, type InjectionPoint } from './inject.js';

/**
 * NoSQL operator injection (MongoDB-style query objects). The baseline sends a value that matches
 * nothing, so the answer is a refusal (4XX) or empty; the probe replaces that value by an operator
 * that matches everything — `name[$ne]=<value>` in a query (how qs and PHP read brackets), or
 * `{"$ne": <value>}` in a JSON body — then `$gt ""`. It is reported when the operator turns the
 * refusal or the empty answer into a success with data, and a control — the same shape with a key
 * that is no operator (`name[rampart]`, `{"rampart": …}`) — does not: a server that simply ignores
 * the bracketed key (and answers everything to a request without a filter) is not fooled for one.
 */

interface Shape {
  ok: boolean;
  /** Elements of the arrays in the answer (any depth), or 1 for a non-empty answer without arrays. */
  items: number;
}

function shapeOf(res: ScanResponse): Shape {
  const ok = res.status >= 200 && res.status < 300;
  let parsed: unknown;
  try {
    parsed = JSON.parse(res.body);
  } catch {
    return { ok, items: res.body.trim() === '' ? 0 : 1 };
  }
  let arrays = 0;
  let items = 0;
  const walk = (node: unknown, depth: number): void => {
    if (depth > 4 || node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      arrays++;
      items += node.length;
      return;
    }
    for (const v of Object.values(node)) walk(v, depth + 1);
  };
  walk(parsed, 0);
  if (arrays > 0) return { ok, items };
  const empty = parsed === null || parsed === '' || (typeof parsed === 'object' && Object.keys(parsed).length === 0);
  return { ok, items: empty ? 0 : 1 };
}

const refusedOrEmpty = (s: Shape): boolean => !s.ok || s.items === 0;
const describe = (res: ScanResponse, s: Shape): string => `${res.status}${s.ok ? `, ${s.items} item${s.items === 1 ? '' : 's'}` : ''}`;

interface Variant {
  label: string;
  /** The request with the operator (or the control) in place of the value. */
  request(op: '$ne' | '$gt' | 'rampart', value: string): ScanRequest;
}

function queryVariant(ctx: ScanContext, point: InjectionPoint): Variant {
  return {
    label: pointLabel(point),
    request: (op, value) => requestWith(ctx, point, op === '$gt' ? '' : value, { key: `${point.name}[${op}]` }),
  };
}

/** Every string property of the body at once: a login needs its user and its password to match. */
function bodyVariant(ctx: ScanContext, endpoint: Endpoint, names: readonly string[]): Variant {
  const base = sampleBody(endpoint);
  const headers = { accept: 'application/json, */*;q=0.5', ...ctx.identities.a?.headers, 'content-type': 'application/json' };
  return {
    label: `JSON body (${names.join(', ')}) of ${endpoint.method} ${endpoint.template}`,
    request: (op, value) => ({
      method: endpoint.method,
      url: endpoint.url,
      headers,
      body: JSON.stringify({ ...base, ...Object.fromEntries(names.map((n) => [n, op === '$gt' ? { $gt: '' } : { [op]: value }])) }),
    }),
  };
}

function plainBody(ctx: ScanContext, endpoint: Endpoint, names: readonly string[], value: string): ScanRequest {
  return {
    method: endpoint.method,
    url: endpoint.url,
    headers: { accept: 'application/json, */*;q=0.5', ...ctx.identities.a?.headers, 'content-type': 'application/json' },
    body: JSON.stringify({ ...sampleBody(endpoint), ...Object.fromEntries(names.map((n) => [n, value])) }),
  };
}

export const nosqlInjectionCheck: Check = {
  id: 'nosql-injection',
  title: 'NoSQL operator injection',
  owasp: 'API8:2023',
  description:
    `For up to ${MAX_POINTS} query parameters (and, with --destructive, JSON bodies): a value that matches nothing, then the same parameter as an operator matching everything ` +
    '(name[$ne]=…, {"$ne": …}, then $gt ""); reported when a refusal or an empty answer becomes data and a non-operator control does not.',
  async run(ctx) {
    const { points, prober } = beginInjection(ctx, this.id, 'their bodies');
    // A query point per parameter; a JSON body is one slot with all its string properties (bodies
    // first: a login's body is where an operator does the most harm). At most MAX_POINTS slots.
    const slots: { endpoint: Endpoint; point?: InjectionPoint; names?: string[] }[] = [];
    const bodies = new Map<string, { endpoint: Endpoint; names: string[] }>();
    for (const p of points.filter((p) => isStringLike(p.schema))) {
      if (p.in === 'body') {
        const key = operationKey(p.endpoint);
        const slot = bodies.get(key) ?? { endpoint: p.endpoint, names: [] };
        bodies.set(key, slot);
        slot.names.push(p.name);
      } else if (p.in === 'query') slots.push({ endpoint: p.endpoint, point: p });
    }
    slots.unshift(...bodies.values());
    slots.splice(MAX_POINTS);
    const found = new Map<string, Finding>();
    for (const slot of slots) {
      const op = operationKey(slot.endpoint);
      if (found.has(op)) continue;
      const value = nonsense();
      const variant = slot.point !== undefined ? queryVariant(ctx, slot.point) : bodyVariant(ctx, slot.endpoint, slot.names!);
      const base = await prober.send(slot.point !== undefined ? requestWith(ctx, slot.point, value) : plainBody(ctx, slot.endpoint, slot.names!, value));
      if (base === undefined) continue;
      const baseShape = shapeOf(base);
      if (!refusedOrEmpty(baseShape)) continue; // the value that matches nothing is answered with data: nothing to compare
      for (const operator of ['$ne', '$gt'] as const) {
        const res = await prober.send(variant.request(operator, value));
        if (res === undefined) break;
        const shape = shapeOf(res);
        if (!shape.ok || shape.items === 0) continue;
        const control = await prober.send(variant.request('rampart', value));
        if (control === undefined) break;
        const controlShape = shapeOf(control);
        if (!refusedOrEmpty(controlShape)) {
          ctx.logger.debug(`nosql-injection: ${variant.label}: the operator got data, but so did the control (${describe(control, controlShape)}); not reported`);
          break;
        }
        const sent = operator === '$ne' ? `{"$ne": "${value}"}` : '{"$gt": ""}';
        found.set(op, findingAt(this.id, res, {
          id: 'nosqli.operator',
          title: `NoSQL operator injection in the ${slot.point !== undefined ? `'${slot.point.name}' parameter` : 'JSON body'} of ${op}`,
          severity: 'high',
          confidence: 'high',
          owasp: 'API8:2023',
          detail:
            `On the ${variant.label}, a value that matches nothing was answered ${describe(base, baseShape)}; the same value as the operator ${sent}` +
            `${slot.point !== undefined ? ` (${slot.point.name}[${operator}]=…)` : ''} was answered ${describe(res, shape)}, while a key that is no operator was answered ${describe(control, controlShape)}: ` +
            'the server puts the client\'s object into its database query, so any filter (a password check included) can be turned into "match everything".',
          remediation:
            'Accept only the types the schema declares (a string is a string: refuse objects and arrays where a scalar is expected, and bracketed query keys), ' +
            'and build queries from validated scalars, never from the parsed body or query object (mongo-sanitize-like filters of $ keys are a second line, not the fix).',
        }, slot.endpoint));
        break;
      }
    }
    prober.sayThrottled(this.id);
    return [...found.values()];
  },
};
