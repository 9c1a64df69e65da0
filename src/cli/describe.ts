import type { RouteVersion } from '../gateway/versions.js';
import { redactUrl } from '../stores/stores.js';
import type { Pipeline } from '../gateway/pipeline.js';

/** The summary `rampart validate` prints: listeners, upstreams, and each route's policies in order. */
export function describePipeline(pipeline: Pipeline): string[] {
  const { config, file } = pipeline.loaded;
  const lines: string[] = [];
  lines.push(`${file}: valid (mode ${config.mode})`);
  const server = config.server;
  const tls = server.tls === undefined ? '' : server.tls === 'auto' ? ' (TLS: development certificate)' : ` (TLS: ${server.tls.cert}${server.tls.http2 === true ? ', HTTP/2' : ''})`;
  lines.push(`  gateway  ${server.tls === undefined ? 'http' : 'https'}://${server.listen.host}:${server.listen.port}${tls}`);
  if (server.http !== undefined) lines.push(`  http     http://${server.http.listen.host}:${server.http.listen.port} (plain HTTP: ${server.insecureRequests.action})`);
  if (config.redis !== undefined) lines.push(`  redis    ${redactUrl(config.redis.url)} (keys ${config.redis.keyPrefix}…)`);
  lines.push(config.admin.enabled ? `  admin    http://${config.admin.listen.host}:${config.admin.listen.port}` : '  admin    disabled');
  const upstreams = Object.entries(config.upstreams);
  lines.push(`upstreams (${upstreams.length}):`);
  for (const [name, u] of upstreams) lines.push(`  ${name}  ${u.targets.map((t) => t.url).join(', ')}`);
  lines.push(`routes (${pipeline.routes.length}):`);
  for (const route of pipeline.routes) {
    const host = route.host !== undefined ? ` host ${route.host}` : '';
    const insecure = route.allowInsecure ? ' (plain HTTP allowed)' : '';
    lines.push(`  ${route.name}  ${route.methods.join(',')} ${route.path}${host} → ${route.upstream?.name ?? (route.handler !== undefined ? '(built-in: identity service)' : '(host app)')}${insecure}`);
    lines.push(`    policies: ${formatPolicies(pipeline, route.name)}`);
    if (route.version !== undefined) lines.push(`    version: ${describeVersion(route.version)}`);
  }
  lines.push(`  (no match)  policies: ${formatPolicies(pipeline, '*')}`);
  return lines;
}

function formatPolicies(pipeline: Pipeline, name: string): string {
  const route = name === '*' ? pipeline.fallback : pipeline.routes.find((r) => r.name === name)!;
  if (route.policies.length === 0) return '(none)';
  return route.policies.map((p) => `${p.name} [${p.phase}${p.priority !== 0 ? ` ${p.priority}` : ''}]`).join(' → ');
}

/** `v1 (header api-version: 1) · deprecated · sunset 2027-07-01T00:00:00.000Z · successor v2` */
function describeVersion(version: RouteVersion): string {
  const select = version.select;
  const how = select === undefined ? '' : ` (${select.kind === 'header' ? `header ${select.name}` : select.kind === 'query' ? `query ${select.name}` : `Accept parameter ${select.name}`}: ${select.value}${select.isDefault ? ', default' : ''})`;
  const parts = [`${version.name}${how}`];
  if (version.deprecation !== undefined) parts.push('deprecated');
  if (version.sunsetIso !== undefined) parts.push(`sunset ${version.sunsetIso}`);
  if (version.successor !== undefined) parts.push(`successor ${version.successor}`);
  return parts.join(' · ');
}
