import { sep } from 'node:path';
import { OWASP_API_2023, type Severity } from '../types.js';
import type { ScanResult } from '../runner.js';
import { TOOL } from './json.js';

/** SARIF 2.1.0 (OASIS): one run, one rule per check, one result per finding. */

const LEVEL: Record<Severity, 'none' | 'note' | 'warning' | 'error'> = { info: 'note', low: 'note', medium: 'warning', high: 'error', critical: 'error' };
/** GitHub code scanning reads `security-severity` (0–10) to rank results. */
const SECURITY_SEVERITY: Record<Severity, string> = { info: '0.0', low: '3.0', medium: '5.5', high: '8.0', critical: '9.5' };

/** A document given as a URL stays one; a file becomes a relative URI reference (SARIF wants URIs, with `/`). */
function artifactUri(uri: string): string {
  if (/^https?:\/\//i.test(uri)) return uri;
  return uri.split(sep).map(encodeURIComponent).join('/');
}

export function toSarif(result: ScanResult): Record<string, unknown> {
  const rules = result.checks.map((check) => ({
    id: check.id,
    name: check.title,
    shortDescription: { text: check.title },
    fullDescription: { text: check.description },
    properties: { tags: ['security', check.owasp], owasp: `${check.owasp} ${OWASP_API_2023[check.owasp]}` },
  }));
  const ruleIndex = new Map(result.checks.map((c, i) => [c.id, i]));
  const results = result.findings.map((f) => {
    const url = new URL(f.location.url);
    return {
      ruleId: f.check,
      ...(ruleIndex.has(f.check) ? { ruleIndex: ruleIndex.get(f.check) } : {}),
      level: LEVEL[f.severity],
      message: { text: `${f.title}. ${f.detail}` },
      locations: [
        {
          // The documented operation (METHOD + template) when there is one, else the request's path.
          logicalLocations: [{ name: `${f.location.method} ${f.operation?.template ?? url.pathname}`, fullyQualifiedName: `${f.location.method} ${url.href}`, kind: 'function' }],
          ...(f.operation?.source === undefined || f.operation.source.line === 0
            ? {}
            : { physicalLocation: { artifactLocation: { uri: artifactUri(f.operation.source.uri) }, region: { startLine: f.operation.source.line, startColumn: Math.max(1, f.operation.source.column) } } }),
        },
      ],
      partialFingerprints: { findingId: `${f.id}@${f.location.host}` },
      properties: {
        findingId: f.id,
        severity: f.severity,
        confidence: f.confidence,
        owasp: f.owasp,
        'security-severity': SECURITY_SEVERITY[f.severity],
        evidence: f.evidence,
        remediation: f.remediation,
      },
    };
  });
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: { driver: { name: TOOL.name, version: TOOL.version, rules } },
        invocations: [{ executionSuccessful: result.stats.incompleteChecks.length === 0, startTimeUtc: result.startedAt, endTimeUtc: result.finishedAt }],
        results,
      },
    ],
  };
}

export function renderSarif(result: ScanResult): string {
  return JSON.stringify(toSarif(result), null, 2) + '\n';
}
