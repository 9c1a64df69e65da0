// Summarizes a V8 .cpuprofile (from `node --cpu-prof`): top functions by self time, and self time
// grouped by where the code lives (Rampart's dist/, a node_modules package, Node internals, GC).
// Usage: node bench/profile-summary.js FILE.cpuprofile [TOP]
import { readFileSync } from 'node:fs';

/** Where a call frame's code lives. */
function origin(url, functionName) {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const mod = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (mod) return mod[1];
  if (url.startsWith('node:')) return 'node internals';
  const dist = /\/dist\/(.+)$/.exec(url);
  if (dist) return `rampart ${dist[1].split('/').slice(0, 2).join('/')}`;
  return url.replace(/^file:\/\//, '');
}

export function summarizeProfile(file, top = 25) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt);
    total += dt;
  }
  const fns = new Map();
  const groups = new Map();
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    const name = functionName || '(anonymous)';
    const file = url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^file:\/\//, '');
    const key = `${name}  ${file}${url ? `:${lineNumber + 1}` : ''}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    const g = origin(url, name);
    groups.set(g, (groups.get(g) ?? 0) + us);
  }
  const busy = total - (groups.get('(idle)') ?? 0);
  const rank = (m) =>
    [...m]
      .filter(([name]) => !name.startsWith('(idle)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: Math.round(us / 1000), pctOfBusy: Math.round((1000 * us) / busy) / 10 }));
  return { totalMs: Math.round(total / 1000), busyMs: Math.round(busy / 1000), functions: rank(fns), origins: rank(groups) };
}

export function formatSummary(summary) {
  const lines = [`profile: ${summary.totalMs} ms sampled, ${summary.busyMs} ms not idle`, '', 'self time by origin (% of non-idle):'];
  for (const o of summary.origins) lines.push(`  ${String(o.pctOfBusy).padStart(5)}%  ${String(o.ms).padStart(6)} ms  ${o.name}`);
  lines.push('', 'top functions by self time (% of non-idle):');
  for (const f of summary.functions) lines.push(`  ${String(f.pctOfBusy).padStart(5)}%  ${String(f.ms).padStart(6)} ms  ${f.name}`);
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (!process.argv[2]) {
    console.error('usage: node bench/profile-summary.js FILE.cpuprofile [TOP]');
    process.exit(2);
  }
  console.log(formatSummary(summarizeProfile(process.argv[2], Number(process.argv[3] ?? 25))));
}
