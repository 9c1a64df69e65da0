import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { generate } from 'selfsigned';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { createHttpClient } from '../src/scanner/http.js';
import { CHECKS, runScan, type ScanResult } from '../src/scanner/runner.js';
import { severityRank } from '../src/scanner/types.js';
import { startVulnerableApi, type VulnerableApi, type Vulnerabilities } from './fixtures/vulnerable/index.js';

/** `rampart scan` against the deliberately vulnerable fixture API (127.0.0.1 only). */

let api: VulnerableApi | undefined;
let dir: string | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

const quiet = { debug: () => {}, warn: () => {} };

async function scan(switches: Partial<Vulnerabilities>, limits: { rate?: number; budget?: number } = {}): Promise<ScanResult> {
  api = await startVulnerableApi(switches);
  const http = createHttpClient({ rate: limits.rate ?? 1000, budget: limits.budget ?? 500, timeoutMs: 5000, maxBodyBytes: 65536, insecure: false, logger: quiet, verbose: false });
  try {
    return await runScan({ target: new URL(api.url), http, logger: quiet });
  } finally {
    await http.close();
  }
}

async function cli(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['scan', ...argv], { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

describe('checks against the vulnerable fixture', () => {
  const cases: { switch: keyof Vulnerabilities; check: string; id: string; severity: string; detail: RegExp }[] = [
    { switch: 'missingHeaders', check: 'headers', id: 'headers.missing', severity: 'medium', detail: /X-Content-Type-Options.*Content-Security-Policy.*X-Frame-Options/ },
    { switch: 'versionBanner', check: 'headers', id: 'headers.version-disclosure', severity: 'low', detail: /Server: Apache\/2\.4\.49.*X-Powered-By: PHP\/7\.4\.3/ },
    { switch: 'corsWildcardCredentials', check: 'cors', id: 'cors.wildcard-credentials', severity: 'medium', detail: /Allow-Origin: \*/ },
    { switch: 'corsReflect', check: 'cors', id: 'cors.reflected-origin', severity: 'high', detail: /rampart-scan\.evil\.example/ },
    { switch: 'corsNull', check: 'cors', id: 'cors.null-origin', severity: 'high', detail: /Origin: null/ },
    { switch: 'corsSuffixBypass', check: 'cors', id: 'cors.origin-bypass', severity: 'high', detail: /127\.0\.0\.1\.evil\.example/ },
  ];
  for (const c of cases) {
    it(`${c.switch} → ${c.id} (${c.severity})`, async () => {
      const result = await scan({ [c.switch]: true });
      const found = result.findings.filter((f) => f.id === c.id);
      expect(found, JSON.stringify(result.findings.map((f) => f.id))).toHaveLength(1); // one per host, not one per endpoint or header
      const f = found[0]!;
      expect(f).toMatchObject({ check: c.check, severity: c.severity, owasp: 'API8:2023', location: { host: new URL(api!.url).host } });
      expect(f.detail).toMatch(c.detail);
      expect(f.evidence.request).toMatch(/^GET \/\S* HTTP\/1\.1/);
      expect(f.evidence.response).toMatch(/^HTTP\/1\.1 \d{3}/);
      expect(f.remediation.length).toBeGreaterThan(20);
      // Nothing else of medium or higher: each switch shows only its own problem.
      const others = result.findings.filter((x) => x.id !== c.id && severityRank(x.severity) >= severityRank('medium'));
      expect(others).toEqual([]);
    });
  }

  it('missing headers are judged per content type and on any status: HTML-only headers are not demanded of JSON', async () => {
    const result = await scan({ missingHeaders: true });
    const f = result.findings.find((x) => x.id === 'headers.missing')!;
    const [nosniff, csp] = f.detail.split('; ');
    expect(nosniff).toMatch(/GET \/health \(200\)/);
    expect(nosniff).toMatch(/\(404\).* and \d+ more$/); // error answers are judged too; the list is bounded
    expect(csp).toMatch(/^Content-Security-Policy .* missing on GET \/ \(200\)$/); // the HTML page only
    expect(f.detail).not.toMatch(/Strict-Transport-Security/); // plain HTTP: HSTS belongs to the transport check
  });

  it('the secure variant: zero findings of medium or higher (and none at all)', async () => {
    const result = await scan({});
    expect(result.findings.filter((f) => severityRank(f.severity) >= severityRank('medium'))).toEqual([]);
    expect(result.findings).toEqual([]);
    expect(result.stats.incompleteChecks).toEqual([]);
    expect(api!.requests.every((r) => r.method === 'GET')).toBe(true); // safe mode: reads only
  });

  it('findings are sorted by severity, most severe first', async () => {
    const result = await scan({ missingHeaders: true, versionBanner: true, corsNull: true });
    const ranks = result.findings.map((f) => severityRank(f.severity));
    expect(ranks).toEqual([...ranks].sort((a, b) => b - a));
    expect(result.findings[0]!.id).toBe('cors.null-origin');
  });
});

describe('safety limits', () => {
  it('never sends more than the request budget; the checks it cut short are named', async () => {
    for (const budget of [1, 5, 10]) {
      const result = await scan({ corsReflect: true }, { budget });
      expect(api!.requests.length).toBeLessThanOrEqual(budget);
      expect(result.stats.requests).toBeLessThanOrEqual(budget);
      expect(result.stats.incompleteChecks, `budget ${budget}: ${JSON.stringify(result.stats)}`).toContain('cors');
      await api!.close();
      api = undefined;
    }
  });

  it('keeps to the rate (requests per second), measured at the server', async () => {
    const rate = 20;
    const result = await scan({}, { rate });
    const times = api!.requests.map((r) => r.at);
    expect(times.length).toBeGreaterThan(10);
    const elapsed = times.at(-1)! - times[0]!;
    // n requests at `rate` per second need at least (n - 1) / rate seconds; 20 % margin for timers.
    expect(elapsed).toBeGreaterThanOrEqual(((times.length - 1) / rate) * 1000 * 0.8);
    // and no one-second window holds more than `rate` (+1 for the window edges).
    for (const t of times) expect(times.filter((x) => x >= t && x < t + 1000).length).toBeLessThanOrEqual(rate + 1);
    expect(result.stats.requests).toBe(times.length);
  });
});

describe('rampart scan (CLI, in process)', () => {
  it('exit 0 when nothing is at or above --fail-on; the terminal report says so', async () => {
    api = await startVulnerableApi({ versionBanner: true });
    const { code, out } = await cli([api.url, '--rate', '1000']);
    expect(code).toBe(0); // a low finding, default --fail-on high
    expect(out.join('\n')).toMatch(/LOW \(1\)/);
    expect(out.join('\n')).not.toContain('\u001b['); // not a TTY: no colour
  });

  it('exit 1 when a finding is at or above --fail-on', async () => {
    api = await startVulnerableApi({ corsReflect: true });
    expect((await cli([api.url, '--rate', '1000'])).code).toBe(1);
    await api.close();
    api = await startVulnerableApi({ versionBanner: true });
    expect((await cli([api.url, '--rate', '1000', '--fail-on', 'low'])).code).toBe(1);
  });

  it('exit 2 on a bad URL, a bad option or an unreachable target, with one line saying why', async () => {
    for (const [argv, message] of [
      [['ftp://127.0.0.1/'], /not an http:\/\/ or https:\/\/ URL/],
      [['not a url'], /is not a URL/],
      [['http://127.0.0.1:1/'], /the target does not answer/],
      [['http://127.0.0.1:1/', '--fail-on', 'severe'], /--fail-on must be one of/],
      [['http://127.0.0.1:1/', '--rate', '0'], /--rate must be a positive number/],
      [['http://127.0.0.1:1/', '--format', 'json,sarif'], /needs --out DIR/],
      [['http://127.0.0.1:1/', '--format', 'html'], /unknown --format 'html'/],
    ] as [string[], RegExp][]) {
      const { code, err } = await cli(argv);
      expect(code, argv.join(' ')).toBe(2);
      expect(err.join('\n')).toMatch(message);
    }
  });

  it('writes the JSON report (schema version 1) and SARIF 2.1.0 with the required fields', async () => {
    api = await startVulnerableApi({ corsNull: true, missingHeaders: true });
    dir = mkdtempSync(join(tmpdir(), 'rampart-scan-'));
    const { code } = await cli([api.url, '--rate', '1000', '--format', 'terminal,json,sarif', '--out', dir]);
    expect(code).toBe(1);

    const json = JSON.parse(readFileSync(join(dir, 'rampart-scan.json'), 'utf8')) as Record<string, unknown>;
    expect(json).toMatchObject({ schemaVersion: 1, tool: { name: 'rampart' }, target: api.url });
    expect(Date.parse(json.startedAt as string)).toBeLessThanOrEqual(Date.parse(json.finishedAt as string));
    expect(json.stats).toMatchObject({ endpoints: 4, incompleteChecks: [], bySeverity: { high: 1, medium: 1 } });
    const findings = json.findings as Record<string, unknown>[];
    expect(findings.map((f) => f.id)).toEqual(['cors.null-origin', 'headers.missing']);
    for (const f of findings) expect(Object.keys(f).sort()).toEqual(['check', 'confidence', 'detail', 'evidence', 'id', 'location', 'owasp', 'remediation', 'severity', 'title']);

    const sarif = JSON.parse(readFileSync(join(dir, 'rampart-scan.sarif'), 'utf8')) as SarifLog;
    const validate = new Ajv({ strict: false }).compile(SARIF_2_1_0_CORE);
    expect(validate(sarif), JSON.stringify(validate.errors)).toBe(true);
    const run = sarif.runs[0]!;
    expect(run.tool.driver.rules.map((r) => r.id)).toEqual(CHECKS.map((c) => c.id)); // one rule per check, in the order they run
    expect(run.results.map((r) => [r.ruleId, r.level, r.locations[0]!.logicalLocations[0]!.name])).toEqual([
      ['cors', 'error', 'GET /'],
      ['headers', 'warning', 'GET /'],
    ]);
  });

  it('over HTTPS: trusts --ca, refuses an unknown certificate (exit 2), --insecure warns; HSTS is demanded', async () => {
    const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
    });
    dir = mkdtempSync(join(tmpdir(), 'rampart-scan-'));
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, pems.cert);
    api = await startVulnerableApi({}, { cert: pems.cert, key: pems.private });
    expect(api.url).toMatch(/^https:/);

    const secure = await cli([api.url, '--rate', '1000', '--ca', ca, '--format', 'json', '--fail-on', 'info']);
    expect(secure.code, secure.err.join('\n')).toBe(0);
    expect((JSON.parse(secure.out.join('\n')) as { findings: unknown[] }).findings).toEqual([]);

    const untrusted = await cli([api.url, '--rate', '1000']);
    expect(untrusted.code).toBe(2);
    expect(untrusted.err.join('\n')).toMatch(/the target does not answer: .*(certificate|SELF_SIGNED|DEPTH_ZERO)/i);

    const insecure = await cli([api.url, '--rate', '1000', '--insecure']);
    expect(insecure.code).toBe(0);
    expect(insecure.err[0]).toMatch(/warning: --insecure/);

    await api.close();
    api = await startVulnerableApi({ missingHeaders: true }, { cert: pems.cert, key: pems.private });
    const missing = await cli([api.url, '--rate', '1000', '--ca', ca, '--format', 'json']);
    const f = (JSON.parse(missing.out.join('\n')) as { findings: { id: string; severity: string; detail: string }[] }).findings.find((x) => x.id === 'headers.missing')!;
    expect(f.severity).toBe('medium');
    expect(f.detail).toMatch(/Strict-Transport-Security \(expected max-age=31536000 \(or more\)\) missing on GET \/ \(200\)/);
  });

  it('--verbose logs every request and its answer to stderr', async () => {
    api = await startVulnerableApi({});
    const { code, err } = await cli([api.url, '--rate', '1000', '--verbose']);
    expect(code).toBe(0);
    expect(err.filter((l) => l.startsWith('→ GET ')).length).toBe(api.requests.length);
    expect(err.filter((l) => /^← \d{3} GET /.test(l)).length).toBe(api.requests.length);
  });

  it('masks credentials in the evidence', async () => {
    const { evidenceOf } = await import('../src/scanner/evidence.js');
    const e = evidenceOf({
      request: { method: 'GET', url: 'http://127.0.0.1/x?y=1', headers: { authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig', cookie: 'sid=abc; theme=dark' } },
      status: 200,
      headers: { 'set-cookie': ['sid=secret; HttpOnly'], 'content-type': 'text/plain' },
      body: 'x'.repeat(5000),
      truncated: false,
      durationMs: 1,
    });
    expect(e.request).toBe('GET /x?y=1 HTTP/1.1\nhost: 127.0.0.1\nauthorization: Bearer ****\ncookie: sid=****; theme=****');
    expect(e.response).toMatch(/^HTTP\/1\.1 200\nset-cookie: sid=\*\*\*\*; HttpOnly\ncontent-type: text\/plain\n\nx{500}… \(4500 more characters\)$/);
  });
});

interface SarifLog {
  runs: { tool: { driver: { rules: { id: string }[] } }; results: { ruleId: string; level: string; locations: { logicalLocations: { name: string }[] }[] }[] }[];
}

/**
 * The required fields and enumerations of the SARIF 2.1.0 schema (sarif-schema-2.1.0.json, OASIS)
 * for what the scanner writes. The official schema file ships in no well-kept npm package
 * (only in @microsoft/jest-sarif, a 1.0.0-beta with its own ajv 6, as sarif-2.1.0-rtm.5.json).
 */
const SARIF_2_1_0_CORE = {
  type: 'object',
  required: ['version', 'runs'],
  properties: {
    version: { const: '2.1.0' },
    $schema: { type: 'string', format: 'uri' },
    runs: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['tool'],
        properties: {
          tool: {
            type: 'object',
            required: ['driver'],
            properties: {
              driver: {
                type: 'object',
                required: ['name'],
                properties: {
                  name: { type: 'string' },
                  version: { type: 'string' },
                  rules: {
                    type: 'array',
                    uniqueItems: true,
                    items: {
                      type: 'object',
                      required: ['id'],
                      properties: {
                        id: { type: 'string' },
                        shortDescription: { $ref: '#/$defs/message' },
                        fullDescription: { $ref: '#/$defs/message' },
                      },
                    },
                  },
                },
              },
            },
          },
          invocations: { type: 'array', items: { type: 'object', required: ['executionSuccessful'], properties: { executionSuccessful: { type: 'boolean' } } } },
          results: {
            type: 'array',
            items: {
              type: 'object',
              required: ['message', 'ruleId', 'level', 'locations'],
              properties: {
                message: { $ref: '#/$defs/message' },
                ruleId: { type: 'string' },
                ruleIndex: { type: 'integer', minimum: -1 },
                level: { enum: ['none', 'note', 'warning', 'error'] },
                locations: {
                  type: 'array',
                  minItems: 1,
                  items: {
                    type: 'object',
                    properties: {
                      logicalLocations: {
                        type: 'array',
                        minItems: 1,
                        items: { type: 'object', required: ['name'], properties: { name: { type: 'string', pattern: '^[A-Z]+ /' }, kind: { type: 'string' } } },
                      },
                    },
                    required: ['logicalLocations'],
                  },
                },
                partialFingerprints: { type: 'object', additionalProperties: { type: 'string' } },
              },
            },
          },
        },
      },
    },
  },
  $defs: {
    message: { type: 'object', anyOf: [{ required: ['text'] }, { required: ['id'] }], properties: { text: { type: 'string' } } },
  },
};
