import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect as http2Connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { closeAfterEach, type TestGateway } from '../helpers/gateway.js';

/**
 * Regressions from the review of the HTTPS listener with `http2: true` (each test is named after
 * the bug it pins down). Before the fixes: slow clients were never cut off, a drain never ended
 * while a client kept its session open, one connection could run unlimited requests at once,
 * CONNECT got `:status 200` with HTTP/1.1 text as its body, and `:authority` lost to `Host`.
 */

const use = closeAfterEach(afterEach);
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rampart-h2-'));
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }] }],
  });
  writeFileSync(join(dir, 'c.crt'), pems.cert);
  writeFileSync(join(dir, 'c.key'), pems.private, { mode: 0o600 });
});

async function h2Gateway(server: Record<string, unknown> = {}): Promise<{ gw: TestGateway; upstream: Awaited<ReturnType<typeof use.upstream>> }> {
  const upstream = await use.upstream(undefined, { readBody: true });
  const gw = await use.gateway({
    server: { tls: { cert: join(dir, 'c.crt'), key: join(dir, 'c.key'), http2: true }, ...server },
    upstreams: { api: { targets: [{ url: upstream.url }] } },
    routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'api', policies: { limits: { contentTypes: ['application/octet-stream'] } } }],
  });
  return { gw, upstream };
}

function session(url: string): ClientHttp2Session {
  const s = http2Connect(url, { rejectUnauthorized: false });
  s.on('error', () => {});
  return s;
}

/**
 * One request; resolves with the response head and body, or how the stream ended without one.
 * `connect`: the headers are sent as given (a CONNECT has no :scheme or :path) and the stream is
 * left open, as a tunnel would be.
 */
function request(s: ClientHttp2Session, headers: Record<string, string>, body?: string, connect = false): Promise<{ head: IncomingHttpHeaders; body: string; rstCode?: number }> {
  return new Promise((resolve) => {
    const stream = s.request(connect ? headers : { ':scheme': 'https', ':authority': 'localhost', ...headers }, { endStream: !connect && body === undefined });
    let head: IncomingHttpHeaders = {};
    let text = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => (head = h));
    stream.on('data', (c: string) => (text += c));
    stream.on('error', () => {});
    stream.on('close', () => resolve({ head, body: text, rstCode: stream.rstCode }));
    if (body !== undefined) stream.end(body);
  });
}

describe('HTTP/2 review regressions', () => {
  it('http2-slow-body-never-cut-off: a stream that trickles its body is reset at the request timeout', async () => {
    const { gw, upstream } = await h2Gateway({ timeouts: { request: '1s' } });
    const s = session(gw.url);
    try {
      const started = Date.now();
      const stream = s.request({ ':method': 'POST', ':path': '/api/up', ':scheme': 'https', ':authority': 'localhost', 'content-type': 'application/octet-stream', 'content-length': '100000' }, { endStream: false });
      stream.on('error', () => {});
      const trickle = setInterval(() => stream.writable && stream.write('x'), 200);
      await new Promise((resolve) => stream.on('close', resolve));
      clearInterval(trickle);
      const elapsed = Date.now() - started;
      // Measured about 1.04 s; generous bound for a busy machine.
      expect(elapsed).toBeGreaterThanOrEqual(900);
      expect(elapsed).toBeLessThan(6000);
      expect(upstream.requests.filter((r) => r.body.length === 100000)).toHaveLength(0);
    } finally {
      s.destroy();
    }
  });

  it('http11-over-http2-server-timeouts-ignored: HTTP/1.1 on the HTTP/2 listener still gets the header timeout (408)', async () => {
    const { gw } = await h2Gateway({ timeouts: { headers: '1s' } });
    const { port } = new URL(gw.url);
    const started = Date.now();
    const answer = await new Promise<string>((resolve) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: Number(port), rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => socket.write('GET /api/x HTTP/1.1\r\nHost: localhost\r\n'));
      const drip = setInterval(() => socket.writable && socket.write(`X-Drip: ${Date.now()}\r\n`), 300);
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (c: string) => (text += c));
      socket.on('close', () => (clearInterval(drip), resolve(text)));
      socket.on('error', () => {});
    });
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(Date.now() - started).toBeLessThan(6000); // measured about 1.5 s
  });

  it('http2-drain-never-ends: shutdown sends GOAWAY to open sessions and finishes within the drain timeout', async () => {
    const { gw } = await h2Gateway({ drainTimeout: '2s' });
    const s = session(gw.url);
    const goaway = new Promise<number>((resolve) => s.on('goaway', (code) => resolve(code)));
    expect((await request(s, { ':method': 'GET', ':path': '/api/x' })).head[':status']).toBe(200);
    const started = Date.now();
    await gw.close();
    expect(await goaway).toBe(0);
    expect(Date.now() - started).toBeLessThan(3000); // measured a few ms
    s.destroy();
  });

  it('http2-unlimited-streams: the server advertises at most 100 concurrent streams per connection', async () => {
    const { gw } = await h2Gateway();
    const s = session(gw.url);
    try {
      const settings = await new Promise<{ maxConcurrentStreams?: number }>((resolve) => s.once('remoteSettings', resolve));
      expect(settings.maxConcurrentStreams).toBe(100);
    } finally {
      s.destroy();
    }
  });

  it('http2-connect-answered-200: CONNECT over HTTP/2 gets 405 problem+json on its stream', async () => {
    const { gw, upstream } = await h2Gateway();
    const s = session(gw.url);
    try {
      const res = await request(s, { ':method': 'CONNECT', ':authority': 'internal.example:443' }, undefined, true);
      expect(res.head[':status']).toBe(405);
      expect(res.head['content-type']).toBe('application/problem+json; charset=utf-8');
      expect(res.head['x-content-type-options']).toBe('nosniff');
      expect(JSON.parse(res.body)).toMatchObject({ code: 'RMP_METHOD_REFUSED' });
      expect(upstream.requests).toHaveLength(0);
    } finally {
      s.destroy();
    }
  });

  it('http2-authority-host-mismatch: a request whose :authority and Host disagree is refused (400)', async () => {
    const { gw, upstream } = await h2Gateway();
    const s = session(gw.url);
    try {
      const res = await request(s, { ':method': 'GET', ':path': '/api/x', ':authority': 'public.example', host: 'internal.example' });
      expect(res.head[':status']).toBe(400);
      expect(JSON.parse(res.body)).toMatchObject({ code: 'RMP_REQUEST_MALFORMED' });
      expect(upstream.requests).toHaveLength(0);
    } finally {
      s.destroy();
    }
  });

  it('http2-pseudo-headers-counted: pseudo-headers do not count towards limits.headers', async () => {
    const { gw } = await h2Gateway();
    const s = session(gw.url);
    try {
      const headers: Record<string, string> = { ':method': 'GET', ':path': '/api/x' };
      for (let i = 0; i < 100; i++) headers[`x-h${i}`] = 'v'; // exactly the default limit of 100
      expect((await request(s, headers)).head[':status']).toBe(200);
      headers['x-one-more'] = 'v';
      expect((await request(s, headers)).head[':status']).toBe(431);
    } finally {
      s.destroy();
    }
  });
});
