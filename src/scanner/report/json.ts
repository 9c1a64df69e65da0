import { readFileSync } from 'node:fs';
import type { ScanStats } from '../runner.js';
import type { Report, ReportedFinding } from './baseline.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };

export const TOOL = { name: pkg.name, version: pkg.version } as const;

/**
 * The JSON report, schema version 1 (docs/scanner.d/reports.md; JSON Schema in
 * docs/scanner-report.schema.json). Fields are only ever added within a version; renaming or
 * removing one bumps `schemaVersion`, so a reader must ignore fields it does not know.
 */
export interface JsonReport {
  schemaVersion: 1;
  tool: { name: string; version: string };
  target: string;
  startedAt: string;
  finishedAt: string;
  /** The OpenAPI document the endpoints came from (`--openapi`), as given. */
  document?: string | undefined;
  findings: ReportedFinding[];
  stats: ScanStats;
  /** With `--baseline`: what it accepted and what it listed that this run did not find again. */
  baseline?: { file: string; accepted: number; new: number; fixed: number; fixedFingerprints: string[] } | undefined;
}

export function toJsonReport(report: Report): JsonReport {
  const { result, baseline } = report;
  return {
    schemaVersion: 1,
    tool: { name: TOOL.name, version: TOOL.version },
    target: result.target,
    startedAt: result.startedAt,
    finishedAt: result.finishedAt,
    ...(result.document === undefined ? {} : { document: result.document }),
    findings: report.findings,
    stats: result.stats,
    ...(baseline === undefined ? {} : { baseline: { file: baseline.file, accepted: baseline.accepted, new: baseline.new, fixed: baseline.fixed.length, fixedFingerprints: baseline.fixed } }),
  };
}

export function renderJson(report: Report): string {
  return JSON.stringify(toJsonReport(report), null, 2) + '\n';
}
