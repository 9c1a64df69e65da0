import { sep } from 'node:path';
import { OWASP_API_2023, type Severity } from '../types.js';
import type { Report } from './baseline.js';
import { TOOL } from './json.js';

/**
 * SARIF 2.1.0 (OASIS Standard, with errata 01): one run, one rule per check, one result per
 * finding. The tests validate every log against the official schema file.
 */

export const SARIF_SCHEMA = 'https://json.schemastore.org/sarif-2.1.0.json';

const LEVEL: Record<Severity, 'none' | 'note' | 'warning' | 'error'> = { info: 'note', low: 'note', medium: 'warning', high: 'error', critical: 'error' };
/** GitHub code scanning reads `security-severity` (0–10) to rank results. */
const SECURITY_SEVERITY: Record<Severity, string> = { info: '0.0', low: '3.0', medium: '5.5', high: '8.0', critical: '9.5' };
/** The key of `result.fingerprints` (SARIF §3.27.16: a versioned name, changed if the recipe changes). */
export const FINGERPRINT_KEY = 'rampartFingerprint/v1';

/** A document given as a URL stays one; a file becomes a URI reference (SARIF wants URIs, with `/`). */
function artifactUri(uri: string): string {
  if (/^https?:\/\//i.test(uri)) return uri;
  return uri.split(sep).map(encodeURIComponent).join('/');
}

export function toSarif(report: Report): Record<string, unknown> {
  const { result, baseline } = report;
  const rules = result.checks.map((check) => ({
    id: check.id,
    name: check.title,
    shortDescription: { text: check.title },
    fullDescription: { text: check.description },
    properties: { tags: ['security', check.owasp], owasp: `${check.owasp} ${OWASP_API_2023[check.owasp]}` },
  }));
  const ruleIndex = new Map(result.checks.map((c, i) => [c.id, i]));
  const results = report.findings.map((f) => {
    const url = new URL(f.location.url);
    const source = f.operation?.source;
    return {
      ruleId: f.check,
      ...(ruleIndex.has(f.check) ? { ruleIndex: ruleIndex.get(f.check) } : {}),
      level: LEVEL[f.severity],
      message: { text: `${f.title}. ${f.detail}` },
      locations: [
        {
          // The documented operation (METHOD + template) when there is one, else the request's path.
          logicalLocations: [{ name: `${f.location.method} ${f.operation?.template ?? url.pathname}`, fullyQualifiedName: `${f.location.method} ${url.href}`, kind: 'function' }],
          // Where the operation is written in the OpenAPI document (--openapi).
          ...(source === undefined || source.line < 1
            ? {}
            : { physicalLocation: { artifactLocation: { uri: artifactUri(source.uri) }, region: { startLine: source.line, startColumn: Math.max(1, source.column) } } }),
        },
      ],
      fingerprints: { [FINGERPRINT_KEY]: f.fingerprint },
      partialFingerprints: { findingId: `${f.id}@${f.location.host}` },
      // Only meaningful against a baseline (SARIF §3.27.24): accepted ones are unchanged, the rest new.
      ...(baseline === undefined ? {} : { baselineState: f.baselined ? 'unchanged' : 'new' }),
      properties: {
        findingId: f.id,
        severity: f.severity,
        confidence: f.confidence,
        owasp: f.owasp,
        'security-severity': SECURITY_SEVERITY[f.severity],
        evidence: f.evidence,
        remediation: f.remediation,
        ...(baseline === undefined ? {} : { baselined: f.baselined }),
      },
    };
  });
  const s = result.stats;
  const ruleRef = (id: string) => ({ id, ...(ruleIndex.has(id) ? { index: ruleIndex.get(id) } : {}) });
  return {
    $schema: SARIF_SCHEMA,
    version: '2.1.0',
    runs: [
      {
        tool: { driver: { name: TOOL.name, version: TOOL.version, rules } },
        invocations: [
          {
            executionSuccessful: s.incompleteChecks.length === 0,
            startTimeUtc: result.startedAt,
            endTimeUtc: result.finishedAt,
            // What was not (fully) tested, for a reader of the log: checks the budget cut short, checks skipped and why.
            toolExecutionNotifications: [
              ...s.incompleteChecks.map((check) => ({ level: 'warning', message: { text: `check ${check} stopped early (request budget spent or the target stopped answering)` }, associatedRule: ruleRef(check) })),
              ...s.skipped.map((k) => ({ level: 'note', message: { text: `check ${k.check} skipped: ${k.reason}` }, associatedRule: ruleRef(k.check) })),
            ],
          },
        ],
        results,
        properties: {
          target: result.target,
          requests: s.requests,
          budget: s.budget,
          endpoints: s.endpoints,
          ...(baseline === undefined ? {} : { baseline: { file: baseline.file, accepted: baseline.accepted, new: baseline.new, fixed: baseline.fixed.length } }),
        },
      },
    ],
  };
}

export function renderSarif(report: Report): string {
  return JSON.stringify(toSarif(report), null, 2) + '\n';
}
