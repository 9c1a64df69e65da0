import { readFileSync } from 'node:fs';
import type { ScanResult, ScanStats } from '../runner.js';
import type { Finding } from '../types.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };

export const TOOL = { name: pkg.name, version: pkg.version } as const;

/**
 * The JSON report, schema version 1 (documented in docs/scanner.md). Fields are only ever added
 * within a version; renaming or removing one bumps `schemaVersion`.
 */
export interface JsonReport {
  schemaVersion: 1;
  tool: { name: string; version: string };
  target: string;
  startedAt: string;
  finishedAt: string;
  findings: Finding[];
  stats: ScanStats;
}

export function toJsonReport(result: ScanResult): JsonReport {
  return {
    schemaVersion: 1,
    tool: { name: TOOL.name, version: TOOL.version },
    target: result.target,
    startedAt: result.startedAt,
    finishedAt: result.finishedAt,
    findings: result.findings,
    stats: result.stats,
  };
}

export function renderJson(result: ScanResult): string {
  return JSON.stringify(toJsonReport(result), null, 2) + '\n';
}
