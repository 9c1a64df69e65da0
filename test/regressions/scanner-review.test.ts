import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { renderTerminal } from '../../src/scanner/report/terminal.js';
import type { Report } from '../../src/scanner/report/baseline.js';
import type { Finding } from '../../src/scanner/types.js';

/** Regressions from the hostile review of `rampart scan` (issue 10): the target's answers are attacker-controlled. */

let server: Server | undefined;
let dir: string | undefined;
afterEach(async () => {
  if (server !== undefined) {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  }
  server = undefined;
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

async function serve(handler: RequestListener): Promise<{ url: string; seen: string[] }> {
  const seen: string[] = [];
  server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, seen };
}

function reply(res: Parameters<RequestListener>[1], status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'x-content-type-options': 'nosniff', ...headers });
  res.end(JSON.stringify(body));
}

async function scan(argv: string[]): Promise<{ code: number; out: string[]; err: string[]; report: string; json: { stats: { skipped: { check: string; reason: string }[] } } | undefined }> {
  dir ??= mkdtempSync(join(tmpdir(), 'rampart-scan-review-'));
  const out: string[] = [];
  const err: string[] = [];
  // Plain HTTP on loopback: the transport check's own finding is judged in its tests.
  const code = await main(['scan', ...argv, '--rate', '1000', ...(argv.includes('--checks') ? [] : ['--skip-checks', 'transport']), '--format', 'terminal,json,sarif,html', '--out', join(dir, 'out')], { out: (l) => out.push(l), err: (l) => err.push(l) });
  let report = '';
  let json;
  try {
    report = ['json', 'sarif', 'html'].map((ext) => readFileSync(join(dir!, 'out', `rampart-scan.${ext}`), 'utf8')).join('\n');
    json = JSON.parse(readFileSync(join(dir!, 'out', 'rampart-scan.json'), 'utf8'));
  } catch {
    // no report written (exit 2)
  }
  return { code, out, err, report, json };
}

function doc(paths: Record<string, unknown>): string {
  dir ??= mkdtempSync(join(tmpdir(), 'rampart-scan-review-'));
  const file = join(dir, 'openapi.json');
  writeFileSync(file, JSON.stringify({ openapi: '3.1.0', info: { title: 't', version: '1' }, security: [{ bearer: [] }], paths, components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } } }));
  return file;
}

describe('rampart scan: hostile review', () => {
  it("the scan's own secrets never reach a report: the --password, the login's tokens, a custom --auth header", async () => {
    const PASSWORD = 'review-password-9f3a1c';
    const ACCESS = 'review-access-token-7d2e4b6a';
    const REFRESH = 'review-refresh-token-5c8f0e1d';
    const { url } = await serve((req, res) => {
      if (req.url === '/login' && req.method === 'POST') {
        // The login answer leaks a hash (a sensitive-data finding whose evidence is this very exchange).
        return reply(res, 200, { access_token: ACCESS, refresh_token: REFRESH, user: { passwordHash: '$2b$12$abcdefghijklmnopqrstuv9XyZ0123456789abcdefghijklmnopq' } });
      }
      // Echoes the caller's credentials back, as badly built debugging endpoints do.
      reply(res, 200, { echo: { authorization: req.headers.authorization ?? null, token: req.headers['x-auth-token'] ?? null, url: req.url } });
    });
    const withLogin = await scan([url, '--login', '/login', '--user', 'ada', '--password', PASSWORD]);
    expect(withLogin.code, withLogin.err.join('\n')).not.toBe(2);
    expect(withLogin.report).toMatch(/sensitive\.hash/); // the finding is there…
    for (const secret of [PASSWORD, ACCESS, REFRESH]) {
      expect(withLogin.report).not.toContain(secret); // …but none of the scan's secrets
      expect(withLogin.out.join('\n')).not.toContain(secret);
      expect(withLogin.err.join('\n')).not.toContain(secret);
    }
    const CUSTOM = 'custom-header-secret-4a9b';
    const withAuth = await scan([url, '--auth', `X-Auth-Token: ${CUSTOM}`]);
    expect(withAuth.report.length).toBeGreaterThan(0);
    expect(withAuth.report + withAuth.out.join('\n')).not.toContain(CUSTOM);
  });

  it('a Location header that is no URL neither crashes the scan nor is followed', async () => {
    const { url } = await serve((req, res) => {
      if (req.url === '/') {
        res.writeHead(302, { location: 'http://[::1', 'x-content-type-options': 'nosniff', 'content-type': 'text/plain' });
        return void res.end('moved');
      }
      reply(res, 404, { error: 'not found' });
    });
    const { code, err } = await scan([url]);
    expect(code, err.join('\n')).toBe(0);
  });

  it('safe mode never sends a documented GET whose path changes state (/logout, …/delete), and says so', async () => {
    const { url, seen } = await serve((_req, res) => reply(res, 401, { error: 'unauthorized' }, { 'www-authenticate': 'Bearer' }));
    const file = doc({
      '/auth/logout': { get: { responses: { '204': { description: 'logged out' } } } },
      '/users/{id}/delete': { get: { parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'integer' } }], responses: { '204': { description: 'deleted' } } } },
      '/users/{id}': { get: { parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'integer' } }], responses: { '200': { description: 'a user' } } } },
    });
    const { code, json, err } = await scan([url, '--openapi', file, '--auth', 'Authorization: Bearer review-token-abcdef']);
    expect(code, err.join('\n')).toBe(0);
    expect(seen.filter((s) => /logout|delete/.test(s))).toEqual([]);
    expect(seen).toContain('GET /users/1'); // the others are tested
    expect(json!.stats.skipped.filter((s) => s.check === 'discovery').map((s) => s.reason)).toEqual([
      'GET /auth/logout looks like it changes state: not sent without --destructive',
      'GET /users/{id}/delete looks like it changes state: not sent without --destructive',
    ]);
  });

  it('throttled answers (429, 503) are not judged for headers: a limiter or CDN page is another layer', async () => {
    const { url } = await serve((_req, res) => {
      res.writeHead(429, { 'content-type': 'text/html', 'retry-after': '30' });
      res.end('<html><body>Too many requests</body></html>');
    });
    const { code, report } = await scan([url, '--checks', 'headers']);
    expect(code).toBe(0);
    expect(report).not.toMatch(/headers\.missing/);
  });

  it('the terminal report prints control characters from the target inert (no screen clear, retitle or fake lines)', () => {
    const hostile: Finding = {
      check: 'sensitive-data',
      id: 'errors.stack-trace',
      title: 'Stack trace \x1b]0;pwned\x07',
      severity: 'medium',
      confidence: 'high',
      owasp: 'API8:2023',
      location: { method: 'GET', url: 'http://127.0.0.1/\x1b[2J', host: '127.0.0.1' },
      evidence: { request: '', response: '' },
      detail: 'at x\x1b[2J\x1b[1;31mFAKE CRITICAL\x1b[0m\r\nnext',
      remediation: 'do not',
    };
    const report = { result: { target: 'http://127.0.0.1/', findings: [hostile], stats: { requests: 1, discoveryRequests: 1, budget: 500, durationMs: 1, endpoints: 1, incompleteChecks: [], skipped: [{ check: 'x', reason: 'r\x1b[2J' }], bySeverity: { info: 0, low: 0, medium: 1, high: 0, critical: 0 } } }, findings: [{ ...hostile, fingerprint: '0'.repeat(32), baselined: false }], baseline: undefined } as unknown as Report;
    const text = renderTerminal(report, { color: false }).join('\n');
    expect(text).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/); // eslint-disable-line no-control-regex
    expect(text).toContain('\\x1b[2J');
    expect(text).toContain('\\x1b]0;pwned\\x07');
  });
});
