import { SEVERITIES, OWASP_API_2023, type Severity } from '../types.js';
import type { Report } from './baseline.js';

const COLOUR: Record<Severity, string> = { critical: '\x1b[1;35m', high: '\x1b[1;31m', medium: '\x1b[33m', low: '\x1b[36m', info: '\x1b[2m' };
const DIM = '\x1b[2m';
const RESET = '\x1b[0m';

/**
 * Control characters (C0 but tab, DEL, C1) as visible escapes: details carry the target's words,
 * and an answer must not clear the screen, retitle the terminal or paint fake lines.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g, (c) => (c === '\n' ? ' ' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

/**
 * Findings grouped by severity, most severe first, then the ones the baseline accepts (one line
 * each), then the summary; colour only when asked (stdout is a TTY).
 */
export function renderTerminal(report: Report, options: { color: boolean }): string[] {
  const paint = (code: string, text: string) => (options.color ? `${code}${text}${RESET}` : text);
  const { result, baseline } = report;
  const lines: string[] = [`rampart scan ${result.target}`];
  const open = report.findings.filter((f) => !f.baselined);
  for (const severity of [...SEVERITIES].reverse()) {
    const group = open.filter((f) => f.severity === severity);
    if (group.length === 0) continue;
    lines.push('', paint(COLOUR[severity], `${severity.toUpperCase()} (${group.length})`));
    for (const f of group) {
      lines.push(`  ${paint(COLOUR[severity], '●')} ${printable(f.title)}  [${f.id}, confidence ${f.confidence}, ${f.owasp} ${OWASP_API_2023[f.owasp]}]`);
      lines.push(`    at ${f.location.method} ${printable(f.location.url)}${f.operation === undefined ? '' : ` (operation ${printable(f.operation.template)})`}`);
      lines.push(`    ${printable(f.detail)}`);
      lines.push(`    fix: ${f.remediation}`);
    }
  }
  const accepted = report.findings.filter((f) => f.baselined);
  if (accepted.length > 0) {
    lines.push('', paint(DIM, `ACCEPTED BY THE BASELINE (${accepted.length})`));
    for (const f of accepted) lines.push(paint(DIM, `  ○ ${f.severity} ${printable(f.title)}  [${f.id}] at ${f.location.method} ${printable(f.location.url)}`));
  }
  const s = result.stats;
  const counts = SEVERITIES.filter((sev) => s.bySeverity[sev] > 0).map((sev) => `${s.bySeverity[sev]} ${sev}`);
  lines.push('', `${result.findings.length === 0 ? 'no findings' : counts.reverse().join(', ')} · ${s.endpoints} endpoints · ${s.requests}/${s.budget} requests · ${(s.durationMs / 1000).toFixed(1)} s`);
  if (baseline !== undefined) lines.push(`baseline ${baseline.file}: ${baseline.new} new, ${baseline.accepted} accepted, ${baseline.fixed.length} fixed (listed, not found again)`);
  if (s.incompleteChecks.length > 0) lines.push(`incomplete (request budget spent or target stopped answering): ${s.incompleteChecks.join(', ')}`);
  for (const k of s.skipped) lines.push(`skipped ${k.check}: ${printable(k.reason)}`);
  return lines;
}
