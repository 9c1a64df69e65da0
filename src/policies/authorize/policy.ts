import { celEnv, isCelError, parse, plan } from '@bufbuild/cel';
import { RampartError } from '../../errors/problem.js';
import type { Consumer, RequestContext } from '../../gateway/context.js';
import { definePolicy } from '../define.js';
import { AuthorizeSchema, type AuthorizeOptions } from './schema.js';

type Evaluate = (bindings: Record<string, unknown>) => unknown;

const VARIABLES = new Set(['request', 'consumer', 'response']);
const CONDITIONAL_HEADERS = ['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range', 'range'];

/**
 * Compiles one CEL rule at config load: a syntax error, or a name other than `request`,
 * `consumer` (and `response` for response rules), is a config error.
 */
function compile(rule: string, allowed: ReadonlySet<string>): Evaluate {
  let parsed;
  try {
    parsed = parse(rule);
  } catch (error) {
    throw new Error(`CEL rule ${JSON.stringify(rule)}: ${(error as Error).message}`);
  }
  // The expression only: `sourceInfo` keeps macro calls unexpanded (with their loop variables).
  for (const name of identifiers((parsed as { expr?: unknown }).expr)) {
    if (!allowed.has(name)) throw new Error(`CEL rule ${JSON.stringify(rule)}: unknown name '${name}' (expected ${[...allowed].join(', ')})`);
  }
  return plan(celEnv(), parsed) as Evaluate;
}

/** Top-level identifiers of a parsed expression (walks the protobuf AST). */
function identifiers(node: unknown, found = new Set<string>()): Set<string> {
  if (node === null || typeof node !== 'object') return found;
  const n = node as { case?: string; value?: unknown; exprKind?: { case?: string; value?: { name?: string } } };
  if (n.exprKind?.case === 'identExpr' && typeof n.exprKind.value?.name === 'string') found.add(n.exprKind.value.name);
  // Comprehension variables (`x` in `list.all(x, …)`) are declared by the expression itself.
  if (n.exprKind?.case === 'comprehensionExpr') {
    const c = n.exprKind.value as { iterVar?: string; accuVar?: string; iterVar2?: string };
    const inner = new Set<string>();
    for (const value of Object.values(c)) identifiers(value, inner);
    for (const name of inner) if (name !== c.iterVar && name !== c.accuVar && name !== c.iterVar2) found.add(name);
    return found;
  }
  for (const value of Object.values(node)) if (typeof value === 'object') identifiers(value, found);
  return found;
}

interface Requirements {
  all: readonly string[] | undefined;
  any: readonly string[] | undefined;
  roles: readonly string[] | undefined;
  allow: readonly Evaluate[] | undefined;
  /** Some rule reads the query or the headers (they are bound only then). */
  needsQuery: boolean;
  needsHeaders: boolean;
}

function requirements(options: Pick<AuthorizeOptions, 'scopes' | 'roles' | 'allow'>): Requirements {
  const rules = options.allow ?? [];
  return {
    all: options.scopes?.all,
    any: options.scopes?.any,
    roles: options.roles,
    allow: options.allow?.map((r) => compile(r, new Set(['request', 'consumer']))),
    needsQuery: rules.some((r) => r.includes('query')),
    needsHeaders: rules.some((r) => r.includes('headers')),
  };
}

/** What CEL sees of the request: no credentials. */
function requestBinding(ctx: RequestContext, needsQuery: boolean, needsHeaders: boolean): Record<string, unknown> {
  const binding: Record<string, unknown> = { method: ctx.request.method, path: ctx.path, params: { ...ctx.params } };
  if (needsQuery) {
    // A repeated name is ambiguous (the rule would see one value, the upstream may read the other).
    const query: Record<string, string> = {};
    const seen = new Set<string>();
    for (const [name, value] of new URLSearchParams(ctx.query)) {
      const folded = name.toLowerCase();
      if (seen.has(folded)) throw new RampartError('RMP_AUTHZ_DENIED', { detail: `The query parameter '${name.slice(0, 64)}' is repeated.` });
      seen.add(folded);
      query[name] = value;
    }
    binding.query = query;
  }
  if (needsHeaders) {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(ctx.request.headers)) {
      if (name === 'authorization' || name === 'cookie' || name === 'proxy-authorization' || value === undefined) continue;
      headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    binding.headers = headers;
  }
  return binding;
}

/**
 * What CEL sees of the consumer, built once per consumer object (authentication reuses one per
 * cached token or API key), not once per request.
 */
const consumerBindings = new WeakMap<Consumer, Record<string, unknown>>();
function consumerBinding(consumer: Consumer): Record<string, unknown> {
  let binding = consumerBindings.get(consumer);
  if (binding === undefined) {
    binding = { id: consumer.id, type: consumer.type, scopes: [...consumer.scopes], roles: [...consumer.roles], claims: JSON.parse(JSON.stringify(consumer.claims ?? {})) as unknown };
    consumerBindings.set(consumer, binding);
  }
  return binding;
}

/**
 * Authorization after authentication: scopes (all-of / any-of), roles (any-of) and CEL rules
 * over the request and the consumer, per route and per method; response rules over the
 * upstream's JSON body that turn someone else's object into a 404. Default deny.
 */
export const authorizePolicy = definePolicy({
  name: 'authorize',
  phase: 'authorize',
  description: 'Scopes, roles and CEL rules (request and response) per route and method; default deny (403 `RMP_AUTHZ_DENIED`, or 404 for a response rule).',
  schema: AuthorizeSchema,
  create(options, pctx) {
    const base = requirements(options);
    const perMethod = new Map(Object.entries((options.methods ?? {}) as Record<string, Pick<AuthorizeOptions, "scopes" | "roles" | "allow">>).map(([m, r]) => [m, requirements(r)]));
    const responseRules = options.response?.map((r) => compile(r, VARIABLES));
    const events = pctx.events;

    const deny = (ctx: RequestContext, why: string): RampartError => {
      ctx.evented = true;
      events.emit({ type: 'authz_fail', level: 'WARN', description: `authorization denied: ${why}`, args: [ctx.consumer?.id ?? 'anonymous'], ...(ctx.consumer !== undefined ? { actor: ctx.consumer.id } : {}), requestId: ctx.requestId, clientIp: ctx.clientIp, route: ctx.route.name, data: { reason: why } });
      return new RampartError('RMP_AUTHZ_DENIED', { detail: 'You are not allowed to do this.' });
    };

    const evaluate = (rule: Evaluate, bindings: Record<string, unknown>, ctx: RequestContext): boolean => {
      const result = rule(bindings);
      if (isCelError(result)) {
        // A rule that cannot be evaluated (a missing field, a type mismatch) does not allow.
        pctx.logger.debug({ requestId: ctx.requestId, route: ctx.route.name, err: String(result) }, 'authorize: CEL rule did not evaluate');
        return false;
      }
      return result === true;
    };

    return {
      request(ctx) {
        const consumer = ctx.consumer;
        if (consumer === undefined) {
          throw new RampartError('RMP_AUTH_REQUIRED', { detail: 'This route needs credentials.', headers: { 'www-authenticate': 'Bearer realm="rampart"' } });
        }
        const req = perMethod.get(ctx.request.method) ?? base;
        if (req.all !== undefined && !req.all.every((s) => consumer.scopes.includes(s))) throw deny(ctx, 'missing scope');
        if (req.any !== undefined && !req.any.some((s) => consumer.scopes.includes(s))) throw deny(ctx, 'missing scope');
        if (req.roles !== undefined && !req.roles.some((r) => consumer.roles.includes(r))) throw deny(ctx, 'missing role');
        let bindings: Record<string, unknown> | undefined;
        if (req.allow !== undefined) {
          bindings = { request: requestBinding(ctx, req.needsQuery, req.needsHeaders), consumer: consumerBinding(consumer) };
          if (!req.allow.some((rule) => evaluate(rule, bindings!, ctx))) throw deny(ctx, 'no rule allows');
        }
        if (responseRules !== undefined) {
          const forResponse = bindings ?? { request: requestBinding(ctx, true, false), consumer: consumerBinding(consumer) };
          // The upstream must answer with the whole object: no conditional or partial answers
          // (a 304 or an ETag would tell whether someone else's object exists).
          (ctx.hiddenHeaders ??= []).push(...CONDITIONAL_HEADERS);
          const head = ctx.request.method === 'HEAD';
          // The proxy holds the whole answer and parses it once (see src/gateway/proxy/response-body.ts).
          (ctx.responseChecks ??= []).push((response) => {
            const status = response.status;
            // Anything but a checked 2xx body is answered by the gateway itself: a missing object
            // and someone else's look the same.
            if (status === 404 || head) throw new RampartError('RMP_OBJECT_NOT_FOUND');
            // A write answered with no content (DELETE → 204) carries no object to reveal, and the
            // write has happened whatever the gateway answers: refusing it would only hide that
            // from its owner. (Writes on other owners' objects are the upstream's to refuse, or a
            // request rule's: response rules protect what is read.) A read keeps failing closed.
            if ((status === 204 || status === 205) && ctx.request.method !== 'GET') return;
            if (status < 200 || status >= 300) throw new RampartError('RMP_RESPONSE_CHECK_FAILED', { detail: 'The response could not be checked.' });
            // Not JSON, or no body: nothing to check, so nothing is sent.
            if (response.json === undefined) throw new RampartError('RMP_RESPONSE_CHECK_FAILED', { detail: 'The response could not be checked.' });
            const all = { ...forResponse, response: { status, body: response.json } };
            if (!responseRules.every((rule) => evaluate(rule, all, ctx))) {
              ctx.evented = true;
              events.emit({ type: 'authz_fail', level: 'WARN', description: 'authorization denied on the response: object of another owner', args: [consumer.id], actor: consumer.id, requestId: ctx.requestId, clientIp: ctx.clientIp, route: ctx.route.name, data: { reason: 'response rule' } });
              throw new RampartError('RMP_OBJECT_NOT_FOUND');
            }
          });
        }
      },
    };
  },
});
