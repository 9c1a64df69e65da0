import { describe, expect, it } from 'vitest';
import type { ScanHttpClient, ScanResponse } from '../http.js';
import type { Identity, ScanContext } from '../types.js';
import { sensitiveDataCheck } from './sensitive-data.js';

/** The sensitive-data check on answers made up here: it sends nothing, so no server is needed. */

function answer(body: unknown, opts: { status?: number; url?: string; requestBody?: string; type?: string } = {}): ScanResponse {
  return {
    request: { method: opts.requestBody === undefined ? 'GET' : 'POST', url: opts.url ?? 'http://api.test/x', headers: { 'user-agent': 'rampart-scan' }, body: opts.requestBody },
    status: opts.status ?? 200,
    headers: { 'content-type': opts.type ?? 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    truncated: false,
    durationMs: 3,
  };
}

async function judge(history: ScanResponse[], identities: { a?: Identity } = {}) {
  const ctx = {
    target: new URL('http://api.test/'),
    options: { safe: true, destructive: false },
    http: { history } as unknown as ScanHttpClient,
    logger: { debug: () => {}, warn: () => {} },
    endpoints: [],
    observed: [],
    identities,
    skip: () => {},
  } satisfies ScanContext;
  return sensitiveDataCheck.run(ctx);
}

const aws = `AKIA${'QWERTYUIOPASDFGH'}`;

describe('sensitive-data', () => {
  it('a password field with a value; validation messages, placeholders and echoes are none', async () => {
    expect((await judge([answer({ user: { name: 'a', password: 'hunter22' } })])).map((f) => f.id)).toEqual(['sensitive.password']);
    const none = await judge([
      answer({ errors: { password: ['This field is required.'] } }, { status: 400 }),
      answer({ errors: { password: 'must be at least 12 characters long' } }),
      answer({ password: 'required', passwordHint: 'your first pet', newPassword: null }),
      answer({ password: 'p4ssw0rd-echo' }, { requestBody: '{"user":"a","password":"p4ssw0rd-echo"}' }), // what the caller just sent
      answer({ links: { resetPassword: '/api/reset' }, password: '/api/password' }),
    ]);
    expect(none).toEqual([]);
  });

  it('the caller\'s own credentials and a login\'s JWT are no leak', async () => {
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1LWFsaWNlIn0.c2lnbmF0dXJl';
    const findings = await judge([answer({ access_token: jwt, token_type: 'Bearer' }), answer({ me: { apiKey: aws } })], { a: { label: 'A', headers: { 'x-api-key': aws } } });
    expect(findings).toEqual([]);
    expect((await judge([answer({ me: { apiKey: aws } })])).map((f) => f.id)).toEqual(['sensitive.token']);
  });

  it('OpenAPI documents are documentation: their examples are not judged', async () => {
    const doc = { openapi: '3.1.0', info: { title: 't', version: '1' }, components: { schemas: { U: { example: { password: 'example-pass', hash: `$2b$12$${'a'.repeat(53)}`, key: aws } } } } };
    expect(await judge([answer(doc, { url: 'http://api.test/openapi.json' })])).toEqual([]);
  });

  it('one finding per host and kind; the evidence masks every secret of the answer, even one the excerpt would cut', async () => {
    const second = `ghp_${'x1Y2'.repeat(9)}`;
    // The token's excerpt starts 100 characters before it: in the middle of the password.
    const body = { padding: 'p'.repeat(400), first: { password: 'Correct-Horse-42', note: 'n'.repeat(55) }, integrations: { aws, gh: second } };
    const findings = await judge([answer(body), answer(body, { url: 'http://api.test/y' }), answer(body, { url: 'http://other.test/z' })]);
    expect(findings.map((f) => `${f.location.host} ${f.id}`).sort()).toEqual(['api.test sensitive.password', 'api.test sensitive.token', 'other.test sensitive.password', 'other.test sensitive.token']);
    const text = JSON.stringify(findings);
    for (const secret of ['Correct-Horse-42', aws, second]) expect(text).not.toContain(secret);
    const token = findings.find((f) => f.id === 'sensitive.token' && f.location.host === 'api.test')!;
    expect(token.detail).toBe(`AWS access key ID AKIA…DFGH (20 characters) on GET /x (200) and 1 more answer; GitHub token ghp_…x1Y2 (40 characters) on GET /x (200) and 1 more answer.`);
    expect(token.evidence.response).toMatch(/^HTTP\/1\.1 200\ncontent-type: application\/json\n\n…/); // the excerpt starts near the marker
    expect(token.evidence.response).toContain('"aws":"AKIA…DFGH (20 characters)"');
    expect(token.evidence.response).not.toMatch(/Horse|rse-42/); // masked before the cut: no half of it is readable
  });

  it('errors: a trace in a JSON answer, a database message, a debug page; a framework banner takes the highest severity seen', async () => {
    const findings = await judge([
      answer({ error: 'boom', stack: 'Error: boom\n    at a (/srv/x.js:1:2)\n    at b (/srv/y.js:3:4)' }, { status: 500 }),
      answer('<h1>Whitelabel Error Page</h1>', { status: 404, type: 'text/html' }),
      answer('<h1>Werkzeug Debugger</h1><p>The debugger caught an exception in your WSGI application.</p>', { status: 500, type: 'text/html' }),
      answer({ error: 'ERROR: relation "users" does not exist' }, { status: 500 }),
    ]);
    const byId = Object.fromEntries(findings.map((f) => [f.id, f]));
    expect(Object.keys(byId).sort()).toEqual(['errors.framework-banner', 'errors.sql', 'errors.stack-trace']);
    expect(byId['errors.stack-trace']).toMatchObject({ severity: 'medium', owasp: 'API8:2023' });
    expect(byId['errors.sql']!.detail).toMatch(/PostgreSQL error message \(relation "users" does not exist/);
    expect(byId['errors.framework-banner']).toMatchObject({ severity: 'high', title: expect.stringMatching(/Werkzeug interactive debugger/) });
    expect(byId['errors.framework-banner']!.detail).toMatch(/Spring Boot Whitelabel error page/);
  });

  // Before: one 256 KiB answer of newlines took minutes (the stack-trace signatures, see
  // signatures.test.ts), and one of 12 000 distinct API keys 0.9 s (each key's place looked for from
  // the start of the body, and each answer's masks copied once per secret). Measured here after the
  // fix: about 80 ms for each body of many secrets, a few ms for the others.
  it('super-linear work over hostile answers: 256 KiB of newlines, escaped newlines or thousands of secrets, each judged in under 500 ms', async () => {
    const size = 256 * 1024;
    const fill = (unit: (i: number) => string) => {
      const parts: string[] = [];
      for (let i = 0, n = 0; n < size - 100; i++) n += parts[parts.push(unit(i)) - 1]!.length + 1;
      return parts;
    };
    const key = (i: number) => `AKIA${i.toString(32).toUpperCase().padStart(16, 'Q')}`;
    const hostile: [string, ScanResponse][] = [
      ['newlines', answer('\n'.repeat(size), { status: 500, type: 'text/html' })],
      ['escaped newlines', answer({ error: '\n'.repeat(size / 2) }, { status: 500 })],
      ['a traceback head, then blank lines', answer(`Traceback (most recent call last):${'\n '.repeat(size / 2)}`, { status: 500, type: 'text/plain' })],
      ['an OpenAPI-looking head of newlines', answer(`${'\n'.repeat(3990)}openapi: 3.1.0`, { type: 'text/yaml' })],
      ['distinct API keys', answer(fill(key).join(' '), { type: 'text/plain' })],
      ['distinct API keys in JSON', answer(fill(key))],
      ['bcrypt hashes', answer(fill((i) => `$2b$12$${i.toString(36).padStart(53, 'a')}`))],
      ['card numbers', answer(fill(() => '4111111111111111').map((card) => ({ card })))],
      ['passwords', answer(fill((i) => `pw-${i}-secret`).map((password) => ({ password })))],
    ];
    for (const [name, res] of hostile) {
      const t0 = performance.now();
      await judge([res]);
      expect(performance.now() - t0, name).toBeLessThan(500);
    }
    const found = await judge(hostile.map(([, res]) => res));
    expect(found.map((f) => f.id).sort()).toEqual(['sensitive.card', 'sensitive.hash', 'sensitive.password', 'sensitive.token']);
    expect(JSON.stringify(found)).not.toContain(key(7));
  });
});
