import { describe, expect, it } from 'vitest';
import type { ScanHttpClient, ScanRequest, ScanResponse } from '../http.js';
import type { Check, Endpoint, ScanContext } from '../types.js';
import { commandInjectionCheck } from './command-injection.js';
import { timing } from './inject.js';
import { nosqlInjectionCheck } from './nosql-injection.js';
import { redosCheck } from './redos.js';
import { sqlInjectionCheck } from './sql-injection.js';
import { xxeCheck } from './xxe.js';

/**
 * Throttled answers in the injection checks' comparisons, against scripted servers: each answer's
 * status, body and duration are made up here (no server, no waiting), and a limiter answers 429 to
 * the requests it picks. A throttled answer decides nothing: it is no refusal, no empty answer, no
 * fast control and no baseline.
 */

interface Scripted {
  status?: number;
  body?: string;
  ms?: number;
  type?: string;
  headers?: Record<string, string>;
}

const LIMITED: Scripted = { status: 429, body: '{"title":"Too Many Requests"}', ms: 2, headers: { 'retry-after': '1' } };

type Server = (req: ScanRequest) => Scripted;

function run(check: Check, endpoint: Endpoint, server: Server, throttle: (n: number) => boolean, limiter: Scripted = LIMITED) {
  let n = 0;
  const history: ScanResponse[] = [];
  const http = {
    history,
    get sent() {
      return n;
    },
    budget: 1000,
    acquire: async () => {},
    close: async () => {},
    send: async (req: ScanRequest): Promise<ScanResponse> => {
      n++;
      const a: Scripted = throttle(n) ? limiter : server(req);
      const res: ScanResponse = {
        request: { method: req.method ?? 'GET', url: String(req.url), headers: req.headers ?? {}, body: req.body },
        status: a.status ?? 200,
        headers: { 'content-type': a.type ?? 'application/json', ...a.headers },
        body: a.body ?? '{}',
        truncated: false,
        durationMs: a.ms ?? 5,
      };
      history.push(res);
      return res;
    },
  } satisfies ScanHttpClient;
  const skipped: string[] = [];
  const ctx: ScanContext = {
    target: new URL('http://api.test/'),
    options: { safe: false, destructive: true },
    http,
    logger: { debug: () => {}, warn: () => {} },
    endpoints: [endpoint],
    observed: [],
    identities: {},
    skip: (c, reason) => skipped.push(`${c}: ${reason}`),
  };
  return check.run(ctx).then((findings) => ({ findings: findings.map((f) => f.id), skipped, sent: n }));
}

const get = (path: string, name: string, value: string): Endpoint => ({
  method: 'GET',
  url: new URL(`http://api.test${path}?${name}=${encodeURIComponent(value)}`),
  template: path,
  from: 'openapi',
  parameters: [{ name, in: 'query', required: true, value, schema: { type: 'string' } }],
});
const param = (req: ScanRequest, name: string): string => new URL(String(req.url)).searchParams.get(name) ?? '';

/** A server whose error path is slow: a value with a quote, a semicolon or a pipe takes 2.5 s (a sleep of 2 s is asked), whatever it says. */
const slowErrors = (req: ScanRequest): Scripted => (/['";|]/.test(param(req, 'q')) ? { status: 400, body: '{"error":"invalid q"}', ms: 2500 } : { body: '{"results":[]}' });
const even = (n: number) => n % 2 === 0;
const third = (n: number) => n % 3 === 0;
const never = () => false;

describe('a 429/503 answer treated as a refusal, a control or a baseline', () => {
  it('timing is the default (2 s sleep): the scripted durations are set against it', () => expect(timing.sleepSeconds).toBe(2));

  /** `server` makes a fresh server for each run (the tarpit counts its requests). */
  const cases: { name: string; check: Check; endpoint: Endpoint; server: () => Server; throttle: (n: number) => boolean }[] = [
    // Before: baseline, quote (429), SLEEP(2) slow, SLEEP(0) a fast 429 taken for the control, SLEEP(2) slow again → sqli.time.
    { name: 'sql-injection, time-based: a throttled zero-sleep control is no fast control', check: sqlInjectionCheck, endpoint: get('/search', 'q', 'notes'), server: () => slowErrors, throttle: even },
    // Before: every answer carries a database error, but the baseline was a 429 without it → sqli.error.
    { name: 'sql-injection, error-based: a throttled baseline is no answer without the error', check: sqlInjectionCheck, endpoint: get('/search', 'q', 'notes'), server: () => () => ({ status: 500, body: '{"error":"SQLITE_ERROR: no such table: notes"}' }), throttle: (n) => n === 1 },
    // Before: ;sleep (429, fast: "not delayed"), |sleep 2 slow, |sleep 0 a fast 429, |sleep 2 slow → cmdi.time.
    { name: 'command-injection: a throttled control is no fast control', check: commandInjectionCheck, endpoint: get('/search', 'q', 'notes'), server: () => slowErrors, throttle: even },
    // A tarpit: from its third answer on, every answer takes 2.5 s. Before: n=20 a fast 429 became the
    // step to compare with, n=24 and its repeat slow (the tarpit), n=20 again a fast 429 → redos.jump.
    {
      name: 'redos: a throttled step or control is no fast answer',
      check: redosCheck,
      endpoint: get('/validate', 'email', 'alice@example.com'),
      server: () => {
        let answered = 0;
        return () => ({ body: '{"valid":false}', ms: ++answered >= 3 ? 2500 : 5 });
      },
      throttle: third,
    },
    // Before: a list that ignores name[$ne] answered everything to the operator, and the control's 429 was taken for a refusal → nosqli.operator.
    { name: 'nosql-injection: a throttled control is no refusal', check: nosqlInjectionCheck, endpoint: get('/topics', 'name', 'security'), server: () => (req) => ({ body: new URL(String(req.url)).searchParams.has('name') ? '{"topics":[]}' : '{"topics":[{"id":1},{"id":2}]}' }), throttle: third },
    // Before: every answer shows a passwd line (an echo of entities, and a sample file), but the baseline was a 429 without it → xxe.external-entity.
    {
      name: 'xxe: a throttled baseline is no answer without the file',
      check: xxeCheck,
      endpoint: { method: 'POST', url: new URL('http://api.test/import'), template: '/import', from: 'openapi', parameters: [], requestBody: { mediaType: 'application/xml', required: true, schema: { type: 'object', properties: { title: { type: 'string' } } } } },
      server: () => (req) => {
        const entity = /<!ENTITY rs "([^"]*)">/.exec(req.body ?? '');
        return { status: 201, type: 'application/xml', body: `<imported>${entity?.[1] ?? 'rampart-scan'}</imported><!-- sample: root:x:0:0:root:/root:/bin/bash -->` };
      },
      throttle: (n) => n === 1,
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const behind = await run(c.check, c.endpoint, c.server(), c.throttle);
      expect(behind.findings).toEqual([]);
      expect(behind.skipped).toEqual([expect.stringMatching(new RegExp(`^${c.check.id}: \\d+ throttled answer\\(s\\) \\(429, 503 or Retry-After\\): the probes they were part of are undecided$`))]);
      // The same server without the limiter: no finding either, nothing said (the finding came from the 429s alone).
      const alone = await run(c.check, c.endpoint, c.server(), never);
      expect(alone.findings).toEqual([]);
      expect(alone.skipped).toEqual([]);
    });
  }

  it('a 503, or any answer with Retry-After, is a throttled answer too', async () => {
    for (const limiter of [{ status: 503, body: '{"title":"Service Unavailable"}', ms: 2 }, { status: 200, body: '{"results":[]}', ms: 2, headers: { 'retry-after': '2' } }]) {
      const behind = await run(sqlInjectionCheck, get('/search', 'q', 'notes'), slowErrors, even, limiter);
      expect(behind.findings, String(limiter.status)).toEqual([]);
      expect(behind.skipped, String(limiter.status)).toEqual([expect.stringMatching(/^sql-injection: 2 throttled answer\(s\)/)]);
    }
  });
});
