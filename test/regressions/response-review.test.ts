import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../helpers/gateway.js';
import { problemOf, send } from '../helpers/http.js';
import { scan } from '../../src/policies/detect/scanners.js';

/**
 * Regressions from a hostile review of the response filters (redact, detect, the response
 * engine) and of version selection. Each test is named after the finding it fixes.
 */

const answers: Record<string, (res: ServerResponse) => void> = {
  '/dup': (res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"a":{"password":"hunter2"},"a":{}}');
  },
  '/bom': (res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('\ufeff{"password":"hunter2","ok":1}');
  },
  '/partial': (res) => {
    res.writeHead(206, { 'content-type': 'application/json', 'content-range': 'bytes 0-29/100' });
    res.end('{"password":"hunter2","ok":1}');
  },
  '/two-encodings': (res) => {
    res.setHeader('content-type', 'application/json');
    res.setHeader('content-encoding', ['gzip', 'identity']);
    res.end('{"ok":1}');
  },
};
for (const type of ['text/html', 'text/json', 'application/x-json', 'application/json, application/json']) {
  answers[`/type/${encodeURIComponent(type)}`] = (res) => {
    res.writeHead(200, { 'content-type': type });
    res.end('{"password":"hunter2","ok":1}');
  };
}

let up: TestUpstream;
let gw: TestGateway;
beforeAll(async () => {
  up = await startUpstream((req: IncomingMessage, res: ServerResponse) => (answers[req.url!] ?? ((r) => r.end()))(res));
  gw = await startGateway({ upstreams: { api: { targets: [{ url: up.url }] } }, routes: [{ name: 'api', match: { path: '/*' }, upstream: 'api' }] });
});
afterAll(async () => {
  await gw?.close();
  await up?.close();
});

describe('response review regressions', () => {
  it('response-duplicate-keys-sent-unfiltered: an answer repeating a key goes out as what was filtered', async () => {
    const res = await send(gw.url, '/dup');
    expect(res.status).toBe(200);
    expect(res.text).toBe('{"a":{}}');
    expect(res.text).not.toContain('hunter2');
  });

  it('response-json-under-other-types-unfiltered: JSON labelled text/html, text/json, x-json or a type list is filtered', async () => {
    for (const type of ['text/html', 'text/json', 'application/x-json', 'application/json, application/json']) {
      const res = await send(gw.url, `/type/${encodeURIComponent(type)}`);
      expect(res.status, type).toBe(200);
      expect(res.text, type).toBe('{"ok":1}');
    }
  });

  it('response-bom-defeats-sniffing: a byte-order mark before unlabelled JSON does not hide it', async () => {
    const res = await send(gw.url, '/bom');
    expect(res.text).not.toContain('hunter2');
    expect(JSON.parse(res.text)).toEqual({ ok: 1 });
  });

  it('response-repeated-content-encoding-crash: two Content-Encoding headers are an invalid answer, not an unreachable upstream', async () => {
    const res = await send(gw.url, '/two-encodings');
    expect(res.status).toBe(502);
    expect(problemOf(res).code).toBe('RMP_RESPONSE_INVALID');
  });

  it('response-partial-answer-rewritten: a 206 whose body a filter changed is refused, never sent with a stale Content-Range', async () => {
    const res = await send(gw.url, '/partial');
    expect(res.status).toBe(502);
    expect(problemOf(res).code).toBe('RMP_RESPONSE_INVALID');
    expect(res.text).not.toContain('hunter2');
  });

  it('detect-cloud-key-scan-quadratic: a text made of key prefixes is scanned in linear time', () => {
    const kinds = { card: true, privateKey: true, cloudKey: true, jwt: false };
    for (const unit of ['xoxb-', 'github_pat_', 'ghp_']) {
      const text = unit.repeat(Math.floor(2_000_000 / unit.length));
      const started = performance.now();
      scan(text, kinds);
      const ms = performance.now() - started;
      // Measured 40–60 ms for 2 MB; the quadratic scan took about 2 s per 10 MB.
      expect(ms, unit).toBeLessThan(1500);
    }
    expect(scan('key xoxb-1234567890abcdef end', kinds)).toEqual([{ start: 4, end: 25, kind: 'cloudKey' }]);
  });
});
