// Regression (found by test/fuzz/router.fuzz.test.ts): an HTTP/1.1 request without a Host header
// got Node's own bare 400 (empty body, no problem+json, no security headers, no request id, no
// access log line): Node refuses it before Fastify, and so before the engine, ever sees it. The
// engine now refuses it itself, like any malformed request, and nothing is forwarded.
import { afterEach, expect, it } from 'vitest';
import { closeAfterEach } from '../helpers/gateway.js';
import { sendRaw } from '../helpers/http.js';

const use = closeAfterEach(afterEach);

it('missing-host-bare-400: an HTTP/1.1 request without Host is 400 RMP_REQUEST_MALFORMED as problem+json; HTTP/1.0 may omit it', async () => {
  const up = await use.upstream();
  const gw = await use.gateway({ upstreams: { app: { targets: [{ url: up.url }] } }, routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app' }] });
  for (const request of ['GET /api/x HTTP/1.1\r\nConnection: close\r\n\r\n', 'POST /api/x HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}', 'GET /nothing HTTP/1.1\r\nConnection: close\r\n\r\n']) {
    const raw = await sendRaw(gw.url, request);
    expect(raw, request).toMatch(/^HTTP\/1\.1 400 /);
    expect(raw, request).toMatch(/\r\ncontent-type: application\/problem\+json; charset=utf-8\r\n/i);
    expect(raw, request).toMatch(/\r\nx-content-type-options: nosniff\r\n/i);
    expect(raw, request).toContain('"code":"RMP_REQUEST_MALFORMED"');
    expect(raw, request).toContain('Host header');
  }
  expect(up.requests).toHaveLength(0);
  expect(await sendRaw(gw.url, 'GET /api/x HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 /);
  expect(up.requests).toHaveLength(1);
});
