import { SEVERITIES, OWASP_API_2023, type Severity } from '../types.js';
import type { ScanResult } from '../runner.js';

const COLOUR: Record<Severity, string> = { critical: '\x1b[1;35m', high: '\x1b[1;31m', medium: '\x1b[33m', low: '\x1b[36m', info: '\x1b[2m' };
const RESET = '\x1b[0m';

/** Findings grouped by severity, most severe first; colour only when asked (stdout is a TTY). */
export function renderTerminal(result: ScanResult, options: { color: boolean }): string[] {
  const paint = (severity: Severity, text: string) => (options.color ? `${COLOUR[severity]}${text}${RESET}` : text);
  const lines: string[] = [`rampart scan ${result.target}`];
  for (const severity of [...SEVERITIES].reverse()) {
    const group = result.findings.filter((f) => f.severity === severity);
    if (group.length === 0) continue;
    lines.push('', paint(severity, `${severity.toUpperCase()} (${group.length})`));
    for (const f of group) {
      lines.push(`  ${paint(severity, '●')} ${f.title}  [${f.id}, confidence ${f.confidence}, ${f.owasp} ${OWASP_API_2023[f.owasp]}]`);
      lines.push(`    at ${f.location.method} ${f.location.url}`);
      lines.push(`    ${f.detail}`);
      lines.push(`    fix: ${f.remediation}`);
    }
  }
  const s = result.stats;
  const counts = SEVERITIES.filter((sev) => s.bySeverity[sev] > 0).map((sev) => `${s.bySeverity[sev]} ${sev}`);
  lines.push('', `${result.findings.length === 0 ? 'no findings' : counts.reverse().join(', ')} · ${s.endpoints} endpoints · ${s.requests}/${s.budget} requests · ${(s.durationMs / 1000).toFixed(1)} s`);
  if (s.incompleteChecks.length > 0) lines.push(`incomplete (request budget spent or target stopped answering): ${s.incompleteChecks.join(', ')}`);
  return lines;
}
