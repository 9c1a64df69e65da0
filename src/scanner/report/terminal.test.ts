import { describe, expect, it } from 'vitest';
import type { ScanResult } from '../runner.js';
import type { Finding } from '../types.js';
import { fingerprintOf, toReport } from './baseline.js';
import { renderTerminal } from './terminal.js';

const finding = (id: string, severity: Finding['severity']): Finding => ({
  check: id.split('.')[0]!,
  id,
  title: `title of ${id}`,
  severity,
  confidence: 'high',
  owasp: 'API8:2023',
  location: { method: 'GET', url: 'http://127.0.0.1:1/', host: '127.0.0.1:1' },
  evidence: { request: 'GET / HTTP/1.1', response: 'HTTP/1.1 200' },
  detail: 'detail',
  remediation: 'fix it',
});

const result = (findings: Finding[]): ScanResult => ({
  target: 'http://127.0.0.1:1/',
  startedAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:00:01.000Z',
  findings,
  checks: [],
  stats: { requests: 7, discoveryRequests: 3, budget: 500, durationMs: 1234, endpoints: 2, incompleteChecks: [], skipped: [], bySeverity: { info: 0, low: 1, medium: 0, high: 1, critical: 0 } },
});

describe('terminal report', () => {
  it('groups findings by severity, most severe first, plain without a TTY', () => {
    const lines = renderTerminal(toReport(result([finding('cors.null-origin', 'high'), finding('headers.version-disclosure', 'low')])), { color: false });
    expect(lines.filter((l) => /^[A-Z]+ \(\d+\)$/.test(l))).toEqual(['HIGH (1)', 'LOW (1)']);
    expect(lines).toContain('  ● title of cors.null-origin  [cors.null-origin, confidence high, API8:2023 Security Misconfiguration]');
    expect(lines.at(-1)).toBe('1 high, 1 low · 2 endpoints · 7/500 requests · 1.2 s');
    expect(lines.join('\n')).not.toContain('\u001b[');
  });

  it('colours the severity headings on a TTY', () => {
    const lines = renderTerminal(toReport(result([finding('cors.null-origin', 'high')])), { color: true });
    expect(lines).toContain('\u001b[1;31mHIGH (1)\u001b[0m');
  });

  it('says so when there is nothing', () => {
    const r = result([]);
    r.stats.bySeverity = { info: 0, low: 0, medium: 0, high: 0, critical: 0 };
    expect(renderTerminal(toReport(r), { color: false }).at(-1)).toMatch(/^no findings · /);
  });

  it('shows the findings the baseline accepts apart, one line each, and the baseline\'s counts', () => {
    const accepted = finding('cors.null-origin', 'high');
    const r = result([accepted, finding('headers.version-disclosure', 'low')]);
    const lines = renderTerminal(toReport(r, { file: 'base.json', fingerprints: [fingerprintOf(accepted), 'f'.repeat(32)] }), { color: false });
    expect(lines.filter((l) => /^[A-Z ]+ \(\d+\)$/.test(l))).toEqual(['LOW (1)', 'ACCEPTED BY THE BASELINE (1)']);
    expect(lines).toContain('  ○ high title of cors.null-origin  [cors.null-origin] at GET http://127.0.0.1:1/');
    expect(lines).toContain('baseline base.json: 1 new, 1 accepted, 1 fixed (listed, not found again)');
  });

  it('names the skipped checks and why', () => {
    const r = result([]);
    r.stats.skipped = [{ check: 'jwt', reason: 'needs --auth or --login' }];
    expect(renderTerminal(toReport(r), { color: false }).at(-1)).toBe('skipped jwt: needs --auth or --login');
  });
});
