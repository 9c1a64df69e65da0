// Regression (found by test/fuzz/router.fuzz.test.ts): two kinds of request never reached the
// engine. An `Expect` header other than `100-continue` got Node's bare 417 (no problem+json, no
// security headers, no log line), and a protocol upgrade (`Connection: upgrade` with `Upgrade:
// websocket` or `h2c`, which `curl --http2` sends over plain HTTP) had its connection closed with
// no answer at all. Both now get a coded problem, and neither is forwarded.
import { afterEach, expect, it } from 'vitest';
import { closeAfterEach } from '../helpers/gateway.js';
import { sendRaw } from '../helpers/http.js';

const use = closeAfterEach(afterEach);

function parse(raw: string) {
  const [head, body] = raw.split('\r\n\r\n', 2) as [string, string];
  const [statusLine, ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine!.split(' ')[1]), headers, body: JSON.parse(body) as Record<string, unknown> };
}

it('expect-and-upgrade-unanswered: an unknown expectation is 417 and an upgrade 501, as problem+json, never forwarded', async () => {
  const up = await use.upstream();
  const gw = await use.gateway({ upstreams: { app: { targets: [{ url: up.url }] } }, routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app' }] });
  const cases: [string, number, string][] = [
    ['GET /api/x HTTP/1.1\r\nHost: t\r\nExpect: something-else\r\nConnection: close\r\n\r\n', 417, 'RMP_EXPECTATION_FAILED'],
    ['POST /api/x HTTP/1.1\r\nHost: t\r\nExpect: 200-ok\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}', 417, 'RMP_EXPECTATION_FAILED'],
    ['GET /api/x HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n', 501, 'RMP_UPGRADE_NOT_SUPPORTED'],
    ['GET /api/x HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n', 501, 'RMP_UPGRADE_NOT_SUPPORTED'],
  ];
  for (const [request, status, code] of cases) {
    const raw = await sendRaw(gw.url, request);
    expect(raw, request).not.toBe('');
    const res = parse(raw);
    expect(res.status, request).toBe(status);
    expect(res.headers['content-type'], request).toBe('application/problem+json; charset=utf-8');
    expect(res.headers['x-content-type-options'], request).toBe('nosniff');
    expect(res.body, request).toMatchObject({ status, code });
  }
  expect(up.requests).toHaveLength(0);
  // `Expect: 100-continue` is still served.
  const ok = await sendRaw(gw.url, 'POST /api/x HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}');
  expect(ok).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
  expect(up.requests).toHaveLength(1);
});
