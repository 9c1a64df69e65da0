import { resolvePolicies, withPolicyDefaults } from '../config/policies.js';
import type { CompiledRoute, Pipeline } from '../gateway/pipeline.js';

/** One line of a route's protection summary: what is on, what is off, and how. */
export interface Protection {
  id: string;
  label: string;
  on: boolean;
  detail: string;
}

export interface RouteView {
  name: string;
  methods: readonly string[];
  paths: string[];
  hosts: string[];
  upstream: string | null;
  builtin: boolean;
  public: boolean;
  version: string | null;
  policies: { name: string; phase: string }[];
  protection: Protection[];
}

type Options = Record<string, unknown>;

/**
 * A route as the console shows it: its effective policies in order, and a summary of the
 * protections a security review asks about, each on or off with a word on how. Worked out from
 * the compiled route (what actually runs) and the options the policies were given.
 */
export function protectionOf(pipeline: Pipeline, route: CompiledRoute): RouteView {
  const config = pipeline.loaded.config;
  const index = config.routes.findIndex((r) => r.name === route.name);
  const routeConfig = index === -1 ? undefined : config.routes[index];
  const builtin = route.handler !== undefined;
  const options = new Map<string, Options>();
  for (const p of resolvePolicies(config, routeConfig, index, routeConfig === undefined)) {
    try {
      options.set(p.definition.name, withPolicyDefaults(p.definition, p.options));
    } catch {
      options.set(p.definition.name, p.options);
    }
  }
  const has = new Set(route.policies.map((p) => p.name));
  const on = (...names: string[]) => names.filter((n) => has.has(n));
  const isPublic = routeConfig?.public === true;

  const protection: Protection[] = [];
  const tls = config.server.tls !== undefined;
  protection.push({
    id: 'tls',
    label: 'HTTPS only',
    on: !route.allowInsecure && (tls || config.server.trustedProxies.length > 0),
    detail: route.allowInsecure
      ? 'plain HTTP served (allowInsecure)'
      : tls
        ? `HTTPS; plain HTTP ${config.server.insecureRequests.action === 'redirect' ? 'redirected (308)' : 'refused'}${has.has('headers') ? ', HSTS sent' : ''}`
        : config.server.trustedProxies.length > 0
          ? 'HTTPS terminated by a trusted proxy'
          : 'no TLS listener: plain HTTP is only redirected',
  });
  const authn = on('jwt', 'api-key', 'introspection');
  // Built-in routes say what they need like any route: an authentication policy, or public (JWKS,
  // metadata, login, whose handler checks the credentials it is sent).
  protection.push({
    id: 'authentication',
    label: 'Authentication',
    on: authn.length > 0,
    detail:
      authn.length > 0
        ? authn.join(', ') + (authn.some((n) => options.get(n)?.anonymous === true) ? ' (optional: anonymous allowed)' : '')
        : builtin
          ? 'public by design (built-in)'
          : isPublic
            ? 'public: true (no authentication)'
            : 'none',
  });
  const authz = options.get('authorize');
  const checksItself = builtin && authn.length > 0;
  protection.push({
    id: 'authorization',
    label: 'Authorization',
    on: has.has('authorize') || checksItself,
    detail: has.has('authorize') ? describeAuthorize(authz) : checksItself ? 'built-in (each endpoint checks roles and ownership)' : 'none',
  });
  const limits: string[] = [];
  if (has.has('ip-rate-limit')) {
    const o = options.get('ip-rate-limit');
    limits.push(`per IP ${String(o?.limit ?? '?')}/${String(o?.window ?? '?')}`);
  }
  if (has.has('rate-limit')) {
    const list = options.get('rate-limit')?.limits;
    if (Array.isArray(list)) for (const l of list as Options[]) limits.push(`${String(l.name)} ${String(l.limit)}/${String(l.window)}`);
  }
  protection.push({ id: 'rate-limit', label: 'Rate limit', on: limits.length > 0, detail: limits.length > 0 ? limits.join('; ') : 'none' });
  const validation = on('openapi', 'inspect', 'limits');
  protection.push({
    id: 'validation',
    label: 'Request validation',
    on: has.has('openapi') || has.has('inspect'),
    detail: [has.has('openapi') ? 'OpenAPI' : undefined, has.has('inspect') ? 'injection inspection' : undefined, has.has('limits') ? 'size and depth limits' : undefined].filter((x) => x !== undefined).join(', ') || (validation.length > 0 ? validation.join(', ') : 'none'),
  });
  const response = [has.has('openapi') && route.upstream !== undefined ? 'allowlist' : undefined, ...on('redact', 'detect', 'upstream-errors')].filter((x): x is string => x !== undefined);
  protection.push({ id: 'response', label: 'Response protection', on: response.length > 0, detail: response.length > 0 ? response.join(', ') : 'none' });
  const cors = options.get('cors');
  const origins = Array.isArray(cors?.origins) ? (cors.origins as unknown[]) : [];
  protection.push({ id: 'cors', label: 'CORS', on: has.has('cors'), detail: has.has('cors') ? (origins.length > 0 ? `allowlist: ${origins.map(String).join(', ')}` : 'closed (no origins)') : 'closed (no CORS headers)' });
  protection.push({ id: 'headers', label: 'Security headers', on: has.has('headers'), detail: has.has('headers') ? 'nosniff, no-store, frame-ancestors none, HSTS on HTTPS' : 'off' });
  protection.push({ id: 'ip-filter', label: 'IP filter', on: has.has('ip-filter'), detail: has.has('ip-filter') ? 'allow/deny lists' : 'off' });
  protection.push({ id: 'logging', label: 'Access log', on: has.has('access-log'), detail: has.has('access-log') ? 'redacted' : 'off' });

  return {
    name: route.name,
    methods: route.methods,
    paths: [route.path],
    hosts: route.host === undefined ? [] : [route.host],
    upstream: route.upstream?.name ?? null,
    builtin,
    public: authn.length === 0,
    version: route.version?.name ?? null,
    policies: route.policies.map((p) => ({ name: p.name, phase: p.phase })),
    protection,
  };
}

function describeAuthorize(options: Options | undefined): string {
  if (options === undefined) return 'rules';
  const parts: string[] = [];
  const scopes = options.scopes as { all?: string[]; any?: string[] } | undefined;
  const needed = [...(scopes?.all ?? []), ...(scopes?.any ?? [])];
  if (needed.length > 0) parts.push(`scopes ${needed.join(', ')}`);
  if (Array.isArray(options.roles)) parts.push(`roles ${(options.roles as string[]).join(', ')}`);
  if (Array.isArray(options.allow)) parts.push('CEL rules');
  if (Array.isArray(options.response)) parts.push('object ownership on the response');
  if (options.methods !== undefined) parts.push('per method');
  return parts.length > 0 ? parts.join('; ') : 'default deny';
}
