import { once } from 'node:events';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BudgetExhaustedError, createHttpClient, parseTargetUrl, ScanRequestError, type HttpClientOptions } from './http.js';

/** The scanner's HTTP client: what it refuses to do matters as much as what it does. */

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    s.close();
    await once(s, 'close');
  }
});

async function serve(handler: RequestListener): Promise<{ url: string; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? '');
    handler(req, res);
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits };
}

const log: string[] = [];
function client(options: Partial<HttpClientOptions> = {}) {
  return createHttpClient({ rate: 1000, budget: 100, timeoutMs: 2000, maxBodyBytes: 1024, insecure: false, verbose: false, logger: { debug: (m) => log.push(m), warn: (m) => log.push(m) }, ...options });
}

describe('scanner HTTP client', () => {
  it('accepts only http(s) URLs with a host and no credentials', () => {
    expect(parseTargetUrl('https://api.example.com/v1').href).toBe('https://api.example.com/v1');
    for (const bad of ['ftp://127.0.0.1/', 'file:///etc/passwd', 'javascript:alert(1)', 'http://user:pw@127.0.0.1/', '127.0.0.1', '', 'data:text/plain,x']) {
      expect(() => parseTargetUrl(bad), bad).toThrow(ScanRequestError);
    }
  });

  it('never follows a redirect to another host or port, even when asked to follow', async () => {
    const other = await serve((_req, res) => res.end('other'));
    const target = await serve((_req, res) => res.writeHead(302, { location: `${other.url}/stolen` }).end());
    const http = client();
    const res = await http.send({ url: `${target.url}/`, followSameHostRedirects: true });
    expect(res.status).toBe(302);
    expect(other.hits).toEqual([]);
    await http.close();
  });

  it('follows same-host redirects only when the check asks, and counts each hop', async () => {
    const target = await serve((req, res) => (req.url === '/a' ? res.writeHead(301, { location: '/b' }).end() : res.end(`at ${req.url}`)));
    const http = client();
    expect((await http.send({ url: `${target.url}/a` })).status).toBe(301);
    const followed = await http.send({ url: `${target.url}/a`, followSameHostRedirects: true });
    expect([followed.status, followed.body, followed.request.url]).toEqual([200, 'at /b', `${target.url}/b`]);
    expect(http.sent).toBe(3);
    await http.close();
  });

  it('reads at most maxBodyBytes of a response and says it cut it', async () => {
    const target = await serve((_req, res) => res.end('y'.repeat(100_000)));
    const http = client({ maxBodyBytes: 1024 });
    const res = await http.send({ url: target.url });
    expect([res.body.length, res.truncated]).toEqual([1024, true]);
    await http.close();
  });

  it('gives up on a target that does not answer within the timeout', async () => {
    const target = await serve(() => {}); // never answers
    const http = client({ timeoutMs: 200 });
    const started = Date.now();
    await expect(http.send({ url: target.url })).rejects.toThrow(ScanRequestError);
    expect(Date.now() - started).toBeLessThan(1500);
    await http.close();
  });

  it('refuses to send beyond the budget, before opening a connection', async () => {
    const target = await serve((_req, res) => res.end('ok'));
    const http = client({ budget: 2 });
    await http.send({ url: target.url });
    await http.send({ url: target.url });
    await expect(http.send({ url: target.url })).rejects.toThrow(BudgetExhaustedError);
    expect(target.hits).toHaveLength(2);
    await http.close();
  });

  it('spaces concurrent requests by the rate and logs each one with verbose', async () => {
    const target = await serve((_req, res) => res.end('ok'));
    const http = client({ rate: 10, verbose: true });
    log.length = 0;
    const started = performance.now();
    await Promise.all(Array.from({ length: 5 }, () => http.send({ url: target.url })));
    expect(performance.now() - started).toBeGreaterThanOrEqual(400 * 0.9);
    expect(log.filter((l) => l.startsWith('→ GET'))).toHaveLength(5);
    expect(log.filter((l) => l.startsWith('← 200 GET'))).toHaveLength(5);
    await http.close();
  });
});
