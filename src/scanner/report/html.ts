import { createHash } from 'node:crypto';
import { OWASP_API_2023, SEVERITIES, type Severity } from '../types.js';
import type { Report, ReportedFinding } from './baseline.js';
import { TOOL } from './json.js';

/**
 * The HTML report: one self-contained file a person can read — inline CSS, no script, no external
 * resource, and a Content-Security-Policy that allows only its own stylesheet (by hash). Findings
 * carry text the target chose (response bodies, headers, URLs), so every value goes through the
 * `html` template below, which escapes whatever it is given unless it is markup made by `html`.
 */

class Markup {
  constructor(readonly value: string) {}
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text → HTML text (also safe inside a quoted attribute); C0 controls and DEL shown as their Unicode pictures (␀, ␛, ␡). */
export function escapeHtml(text: string): string {
  return text
    .replace(/[&<>"']/g, (c) => ENTITIES[c]!)
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, (c) => String.fromCodePoint(c === '\u007f' ? 0x2421 : 0x2400 + c.charCodeAt(0)));
}

function render(value: unknown): string {
  if (value instanceof Markup) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === undefined || value === null || value === false) return '';
  return escapeHtml(String(value));
}

/** A tagged template: the literal parts are markup, every interpolated value is escaped (unless it is Markup). */
function html(strings: TemplateStringsArray, ...values: unknown[]): Markup {
  let out = strings[0]!;
  for (const [i, value] of values.entries()) out += render(value) + strings[i + 1]!;
  return new Markup(out);
}

const CSS = `
:root { color-scheme: light; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg: #ffffff; --panel: #f6f8fa;
  --critical: #7b1fa2; --high: #b71c1c; --medium: #9a4d00; --low: #0b5cad; --info: #57606a; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 72rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 .75rem; padding-bottom: .25rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 0 0 .5rem; }
.target { color: var(--muted); margin: 0; word-break: break-all; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0 0 1rem; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; word-break: break-word; }
table.counts { border-collapse: collapse; margin: .5rem 0 1rem; }
table.counts th, table.counts td { border: 1px solid var(--line); padding: .3rem .8rem; text-align: left; }
table.counts td.n { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; min-width: 4.8rem; padding: .05rem .5rem; border-radius: .25rem; color: #fff; font-weight: 600; font-size: .8rem; text-transform: uppercase; text-align: center; }
.sev-critical .badge, .badge.sev-critical { background: var(--critical); }
.sev-high .badge, .badge.sev-high { background: var(--high); }
.sev-medium .badge, .badge.sev-medium { background: var(--medium); }
.sev-low .badge, .badge.sev-low { background: var(--low); }
.sev-info .badge, .badge.sev-info { background: var(--info); }
h2.sev-critical { color: var(--critical); } h2.sev-high { color: var(--high); } h2.sev-medium { color: var(--medium); } h2.sev-low { color: var(--low); } h2.sev-info { color: var(--info); }
article.finding { border: 1px solid var(--line); border-left: .35rem solid var(--info); border-radius: .35rem; padding: .9rem 1rem; margin: 0 0 1rem; background: var(--bg); }
article.finding.sev-critical { border-left-color: var(--critical); } article.finding.sev-high { border-left-color: var(--high); }
article.finding.sev-medium { border-left-color: var(--medium); } article.finding.sev-low { border-left-color: var(--low); }
article.finding.accepted { opacity: .8; background: var(--panel); }
code, pre { font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; }
pre { background: var(--panel); border: 1px solid var(--line); border-radius: .25rem; padding: .6rem .8rem; overflow-x: auto; white-space: pre-wrap; word-break: break-all; margin: .25rem 0 .75rem; }
details { margin-top: .5rem; }
summary { cursor: pointer; color: var(--low); font-weight: 600; }
h4 { font-size: .9rem; margin: .6rem 0 0; color: var(--muted); }
ul.notes { margin: .25rem 0 1rem; padding-left: 1.25rem; }
.none { color: var(--muted); }
footer { color: var(--muted); font-size: .85rem; margin-top: 2.5rem; border-top: 1px solid var(--line); padding-top: .75rem; }
`;

const CSP = `default-src 'none'; style-src 'sha256-${createHash('sha256').update(CSS).digest('base64')}'; base-uri 'none'; form-action 'none'`;

const TITLE: Record<Severity, string> = { critical: 'Critical', high: 'High', medium: 'Medium', low: 'Low', info: 'Info' };
const ORDER = [...SEVERITIES].reverse();

function utc(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace(/Z$/, ' UTC');
}

function findingCard(f: ReportedFinding, n: number): Markup {
  const source = f.operation?.source;
  return html`<article class="finding sev-${f.severity}${f.baselined ? ' accepted' : ''}" id="finding-${n}">
<h3><span class="badge sev-${f.severity}">${f.severity}</span> ${f.title}</h3>
<dl class="facts">
<dt>Finding</dt><dd><code>${f.id}</code>${f.baselined ? ' (accepted by the baseline)' : ''}</dd>
<dt>OWASP API 2023</dt><dd>${f.owasp} ${OWASP_API_2023[f.owasp]}</dd>
<dt>Confidence</dt><dd>${f.confidence}</dd>
<dt>Location</dt><dd><code>${f.location.method} ${f.location.url}</code></dd>
${f.operation === undefined ? '' : html`<dt>Operation</dt><dd><code>${f.location.method} ${f.operation.template}</code></dd>`}
${source === undefined || source.line < 1 ? '' : html`<dt>Declared at</dt><dd><code>${source.uri}:${source.line}:${source.column}</code></dd>`}
<dt>Fingerprint</dt><dd><code>${f.fingerprint}</code></dd>
</dl>
<p class="detail">${f.detail}</p>
<p class="remediation"><strong>Remediation:</strong> ${f.remediation}</p>
<details><summary>Evidence</summary>
<h4>Request</h4>
<pre class="request">${f.evidence.request}</pre>
<h4>Response</h4>
<pre class="response">${f.evidence.response}</pre>
</details>
</article>
`;
}

export function renderHtml(report: Report): string {
  const { result, baseline } = report;
  const s = result.stats;
  const open = report.findings.filter((f) => !f.baselined);
  const accepted = report.findings.filter((f) => f.baselined);
  let n = 0;
  const sections = ORDER.map((severity) => {
    const group = open.filter((f) => f.severity === severity);
    if (group.length === 0) return '';
    return html`<section class="sev-${severity}" id="sev-${severity}">
<h2 class="sev-${severity}">${TITLE[severity]} (${group.length})</h2>
${group.map((f) => findingCard(f, ++n))}</section>
`;
  });
  const countRows = ORDER.map((severity) => {
    const all = report.findings.filter((f) => f.severity === severity).length;
    const ok = accepted.filter((f) => f.severity === severity).length;
    return html`<tr class="sev-${severity}"><th><span class="badge sev-${severity}">${severity}</span></th><td class="n">${all - ok}</td>${baseline === undefined ? '' : html`<td class="n">${ok}</td>`}</tr>`;
  });
  const doc = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>rampart scan — ${result.target}</title>
<style>${new Markup(CSS)}</style>
</head>
<body>
<main>
<header>
<h1>Rampart scan report</h1>
<p class="target">${result.target}</p>
</header>
<section id="summary">
<h2>Summary</h2>
<dl class="facts">
<dt>Target</dt><dd><code>${result.target}</code></dd>
${result.document === undefined ? '' : html`<dt>OpenAPI document</dt><dd><code>${result.document}</code></dd>`}
<dt>Started</dt><dd>${utc(result.startedAt)}</dd>
<dt>Finished</dt><dd>${utc(result.finishedAt)} (${(s.durationMs / 1000).toFixed(1)} s)</dd>
<dt>Endpoints</dt><dd>${s.endpoints}</dd>
<dt>Requests</dt><dd>${s.requests} of a budget of ${s.budget}</dd>
<dt>Findings</dt><dd id="total">${report.findings.length}${baseline === undefined ? '' : ` (${baseline.new} new, ${baseline.accepted} accepted by the baseline)`}</dd>
${baseline === undefined ? '' : html`<dt>Baseline</dt><dd><code>${baseline.file}</code>: ${baseline.accepted} accepted, ${baseline.fixed.length} fixed (listed, not found again)</dd>`}
</dl>
<table class="counts">
<thead><tr><th>Severity</th>${baseline === undefined ? html`<th>Findings</th>` : html`<th>New</th><th>Accepted by the baseline</th>`}</tr></thead>
<tbody>${countRows}</tbody>
</table>
${s.incompleteChecks.length === 0 ? '' : html`<h3>Incomplete checks</h3><p>Stopped early because the request budget was spent or the target stopped answering; what they did not test is not reported:</p><ul class="notes">${s.incompleteChecks.map((c) => html`<li><code>${c}</code></li>`)}</ul>`}
${s.skipped.length === 0 ? '' : html`<h3>Skipped checks</h3><ul class="notes">${s.skipped.map((k) => html`<li><code>${k.check}</code>: ${k.reason}</li>`)}</ul>`}
</section>
${open.length === 0 ? html`<h2>Findings</h2><p class="none">No ${baseline === undefined ? '' : 'new '}findings.</p>` : sections}
${accepted.length === 0 ? '' : html`<section id="accepted"><h2>Accepted by the baseline (${accepted.length})</h2>
${accepted.map((f) => findingCard(f, ++n))}</section>`}
<footer>${TOOL.name} ${TOOL.version} · checks: ${result.checks.map((c) => c.id).join(', ') || 'none'}</footer>
</main>
</body>
</html>
`;
  return doc.value;
}
