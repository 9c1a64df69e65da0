import type { Pipeline } from '../gateway/pipeline.js';

/** The summary `rampart validate` prints: listeners, upstreams, and each route's policies in order. */
export function describePipeline(pipeline: Pipeline): string[] {
  const { config, file } = pipeline.loaded;
  const lines: string[] = [];
  lines.push(`${file}: valid (mode ${config.mode})`);
  lines.push(`  gateway  http://${config.server.listen.host}:${config.server.listen.port}`);
  lines.push(config.admin.enabled ? `  admin    http://${config.admin.listen.host}:${config.admin.listen.port}` : '  admin    disabled');
  const upstreams = Object.entries(config.upstreams);
  lines.push(`upstreams (${upstreams.length}):`);
  for (const [name, u] of upstreams) lines.push(`  ${name}  ${u.targets.map((t) => t.url).join(', ')}`);
  lines.push(`routes (${pipeline.routes.length}):`);
  for (const route of pipeline.routes) {
    const host = route.host !== undefined ? ` host ${route.host}` : '';
    lines.push(`  ${route.name}  ${route.methods.join(',')} ${route.path}${host} → ${route.upstream?.name ?? '(host app)'}`);
    lines.push(`    policies: ${formatPolicies(pipeline, route.name)}`);
  }
  lines.push(`  (no match)  policies: ${formatPolicies(pipeline, '*')}`);
  return lines;
}

function formatPolicies(pipeline: Pipeline, name: string): string {
  const route = name === '*' ? pipeline.fallback : pipeline.routes.find((r) => r.name === name)!;
  if (route.policies.length === 0) return '(none)';
  return route.policies.map((p) => `${p.name} [${p.phase}${p.priority !== 0 ? ` ${p.priority}` : ''}]`).join(' → ');
}
