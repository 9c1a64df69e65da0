// Regression (security review): Node checks header timeouts only every 30 s by default, so a
// client sending headers slowly held a connection up to 30 s past `server.timeouts.headers`.
import { connect } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { closeAfterEach } from '../helpers/gateway.js';

const use = closeAfterEach(afterEach);

it('slow-headers-timeout-latency: an incomplete request is answered 408 soon after the headers timeout', async () => {
  const gw = await use.gateway({ server: { timeouts: { headers: '1s' } }, routes: [] });
  const url = new URL(gw.url);
  const started = Date.now();
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.write('GET / HTTP/1.1\r\nHost: t\r\nX-Slow: 1'));
    let data = '';
    socket.on('data', (c: Buffer) => (data += c.toString()));
    socket.on('close', () => resolve(data));
    socket.on('error', reject);
  });
  const elapsed = Date.now() - started;
  console.log(`slow headers answered after ${elapsed} ms (timeout 1 s)`);
  expect(answer).toMatch(/^HTTP\/1\.1 408 /);
  expect(answer).toContain('"code":"RMP_REQUEST_TIMEOUT"');
  // Without the fix this took ~30 s; the margin is generous for a loaded machine.
  expect(elapsed).toBeLessThan(10_000);
});
