// Raw-socket attacks on the listener: request smuggling payloads and a slowloris client.
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAfterEach } from './helpers/gateway.js';
import { sendRaw } from './helpers/http.js';

const use = closeAfterEach(afterEach);

async function setup(server: Record<string, unknown> = {}) {
  const up = await use.upstream();
  const gw = await use.gateway({ server, upstreams: { app: { targets: [{ url: up.url }] } }, routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app' }] });
  return { gw, up };
}

describe('request smuggling', () => {
  it('refuses conflicting or ambiguous framing with 400 and forwards nothing', async () => {
    const { gw, up } = await setup();
    const payloads = {
      'CL.TE': 'POST /api/a HTTP/1.1\r\nHost: t\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED',
      'TE.CL': 'POST /api/a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n',
      'duplicate CL': 'POST /api/a HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
      'TE obfuscated': 'POST /api/a HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n',
      'TE gzip': 'POST /api/a HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n',
      'TE list': 'POST /api/a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n',
      'space before colon': 'POST /api/a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
      'bare LF chunk': 'POST /api/a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\n0\n\n',
    };
    for (const [name, raw] of Object.entries(payloads)) {
      // With a body type the route accepts, so only the framing can refuse them.
      const payload = raw.includes('Content-Type') ? raw : raw.replace('Host: t\r\n', 'Host: t\r\nContent-Type: text/plain\r\n');
      const answer = await sendRaw(gw.url, payload);
      expect(answer, name).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer, name).toContain('"code":"RMP_REQUEST_MALFORMED"');
    }
    expect(up.requests).toHaveLength(0);
  });
});

describe('slowloris', () => {
  it('cuts a client sending one header byte per second off at the header timeout', async () => {
    const { gw } = await setup({ timeouts: { headers: '2s' } });
    const url = new URL(gw.url);
    const started = Date.now();
    const text = 'GET /api/a HTTP/1.1\r\nHost: t\r\nX-Slow: ' + 'a'.repeat(100);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname);
      let i = 0;
      let data = '';
      const timer = setInterval(() => {
        if (i < text.length && socket.writable) socket.write(text[i++]!);
      }, 1000);
      socket.on('data', (c: Buffer) => (data += c.toString()));
      socket.on('close', () => {
        clearInterval(timer);
        resolve(data);
      });
      socket.on('error', (e) => {
        clearInterval(timer);
        reject(e);
      });
    });
    const elapsed = Date.now() - started;
    console.log(`slowloris cut off after ${elapsed} ms (header timeout 2 s)`);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    // Well before the 100 s the headers would take; generous margin for a loaded machine.
    expect(elapsed).toBeLessThan(10_000);
  });
});

describe('connections per client address', () => {
  it('answers a connection past server.maxConnectionsPerIp with 429 and closes it; a freed slot is reusable', async () => {
    const { gw } = await setup({ maxConnectionsPerIp: 2 });
    const url = new URL(gw.url);
    const open = (): Promise<{ socket: Socket; first: Promise<string> }> =>
      new Promise((resolve, reject) => {
        const socket = connect(Number(url.port), url.hostname, () => {
          const first = new Promise<string>((r) => {
            let data = '';
            socket.on('data', (c: Buffer) => {
              data += c.toString();
              if (data.includes('\r\n\r\n')) r(data);
            });
            socket.on('close', () => r(data));
          });
          resolve({ socket, first });
        });
        socket.on('error', reject);
      });
    const a = await open();
    const b = await open();
    a.socket.write('GET /api/a HTTP/1.1\r\nHost: t\r\n\r\n');
    b.socket.write('GET /api/b HTTP/1.1\r\nHost: t\r\n\r\n');
    expect(await a.first).toMatch(/^HTTP\/1\.1 200 /);
    expect(await b.first).toMatch(/^HTTP\/1\.1 200 /);
    const c = await open();
    const refused = await c.first;
    expect(refused).toMatch(/^HTTP\/1\.1 429 /);
    const closed = new Promise((r) => a.socket.once('close', r));
    a.socket.destroy();
    await closed;
    // The server sees the close asynchronously: retry the fourth connection briefly.
    let answer = '';
    for (let i = 0; i < 50 && !answer.startsWith('HTTP/1.1 200'); i++) {
      const d = await open();
      d.socket.write('GET /api/d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
      answer = await d.first;
      d.socket.destroy();
      if (!answer.startsWith('HTTP/1.1 200')) await new Promise((r) => setTimeout(r, 20));
    }
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    b.socket.destroy();
  });
});
