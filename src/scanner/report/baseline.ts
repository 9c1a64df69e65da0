import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ScanResult } from '../runner.js';
import type { Finding } from '../types.js';

/**
 * Fingerprints and the baseline (`--baseline FILE`): findings a team has accepted, still reported
 * but marked, and not counted for `--fail-on`.
 */

/** 32 lowercase hex digits: the first 128 bits of a SHA-256. */
const FINGERPRINT = /^[0-9a-f]{32}$/;

/**
 * What stays the same when the same problem is found again: the finding id, the host, the method
 * and the documented operation's path template (else the request's path). Not the evidence, the
 * detail or the query string, which change from run to run (dates, request ids, a body excerpt).
 */
export function fingerprintOf(f: Pick<Finding, 'id' | 'location' | 'operation'>): string {
  const path = f.operation?.template ?? new URL(f.location.url).pathname;
  const key = [f.id, f.location.host.toLowerCase(), f.location.method.toUpperCase(), path].join('\n');
  return createHash('sha256').update(key).digest('hex').slice(0, 32);
}

export interface Baseline {
  /** The file, as given. */
  file: string;
  /** Accepted fingerprints, in the file's order, each once. */
  fingerprints: readonly string[];
}

/** The baseline cannot be used (missing, unreadable, not a report or a fingerprint list): exit 2. */
export class BaselineError extends Error {
  override name = 'BaselineError';
}

function fromReport(file: string, doc: unknown): string[] {
  if (Array.isArray(doc) && doc.every((x) => typeof x === 'string')) return fromList(file, doc.join('\n'));
  const report = doc as { schemaVersion?: unknown; findings?: unknown };
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new BaselineError(`--baseline ${file}: not a rampart scan JSON report (an object with schemaVersion and findings)`);
  if ('runs' in report && !('schemaVersion' in report)) throw new BaselineError(`--baseline ${file}: a SARIF log; give the JSON report of that run (rampart-scan.json) or a list of fingerprints`);
  if (!('schemaVersion' in report)) throw new BaselineError(`--baseline ${file}: not a rampart scan JSON report (no schemaVersion)`);
  if (report.schemaVersion !== 1) throw new BaselineError(`--baseline ${file}: schemaVersion ${JSON.stringify(report.schemaVersion)} is not a version this rampart reads (1)`);
  if (!Array.isArray(report.findings)) throw new BaselineError(`--baseline ${file}: findings is not an array`);
  return report.findings.map((f: unknown, i: number) => {
    const finding = f as Partial<Finding> & { fingerprint?: unknown };
    if (typeof finding.fingerprint === 'string' && FINGERPRINT.test(finding.fingerprint)) return finding.fingerprint;
    // A report written before fingerprints were: computed from the same fields.
    if (typeof finding.id === 'string' && typeof finding.location?.url === 'string' && typeof finding.location.host === 'string' && typeof finding.location.method === 'string') {
      try {
        return fingerprintOf(finding as Finding);
      } catch {
        // fall through to the error below (an unparsable URL)
      }
    }
    throw new BaselineError(`--baseline ${file}: findings[${i}] has neither a fingerprint nor an id and location`);
  });
}

/** One fingerprint a line; `#` starts a comment; anything after the fingerprint (a note) is ignored. */
function fromList(file: string, text: string): string[] {
  const out: string[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const fp = line.split(/\s+/)[0]!;
    if (!FINGERPRINT.test(fp)) throw new BaselineError(`--baseline ${file}:${i + 1}: '${fp.slice(0, 40)}' is not a finding fingerprint (32 hex digits)`);
    out.push(fp);
  }
  return out;
}

/** A previous JSON report (`rampart-scan.json`) or a text file of fingerprints. */
export function readBaseline(file: string): Baseline {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (error as Error).message;
    throw new BaselineError(`--baseline ${file}: cannot read it (${why})`);
  }
  let fingerprints: string[];
  if (text.trimStart().startsWith('{') || text.trimStart().startsWith('[')) {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (error) {
      throw new BaselineError(`--baseline ${file}: not valid JSON (${(error as Error).message})`);
    }
    fingerprints = fromReport(file, doc);
  } else {
    fingerprints = fromList(file, text);
  }
  return { file, fingerprints: [...new Set(fingerprints)] };
}

export interface ReportedFinding extends Finding {
  fingerprint: string;
  /** Accepted by the baseline: still reported, not counted for --fail-on. */
  baselined: boolean;
}

/** What every report renders: the result, each finding with its fingerprint, and the baseline's outcome. */
export interface Report {
  result: ScanResult;
  findings: ReportedFinding[];
  baseline?: {
    file: string;
    /** Findings of this run the baseline accepts. */
    accepted: number;
    /** Findings of this run the baseline does not know. */
    new: number;
    /** Baseline entries this run did not find again (fixed, or no longer reached). */
    fixed: string[];
  } | undefined;
}

export function toReport(result: ScanResult, baseline?: Baseline): Report {
  const accepted = new Set(baseline?.fingerprints ?? []);
  const findings = result.findings.map((f) => {
    const fingerprint = fingerprintOf(f);
    return { ...f, fingerprint, baselined: accepted.has(fingerprint) };
  });
  if (baseline === undefined) return { result, findings };
  const seen = new Set(findings.map((f) => f.fingerprint));
  const n = findings.filter((f) => f.baselined).length;
  return { result, findings, baseline: { file: baseline.file, accepted: n, new: findings.length - n, fixed: baseline.fingerprints.filter((fp) => !seen.has(fp)) } };
}
