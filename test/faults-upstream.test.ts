import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAfterEach } from './helpers/gateway.js';
import { problemOf, send } from './helpers/http.js';

/**
 * Issue 11, faults: an upstream that resets connections, refuses them, then recovers, or flaps.
 * Documented (upstreams.*.passiveHealth, docs/errors.md): each failure is a 502
 * RMP_UPSTREAM_UNAVAILABLE; after `failures` in a row the target's circuit opens and requests are
 * answered at once with 503 RMP_UPSTREAM_CIRCUIT_OPEN and Retry-After, nothing sent; after the
 * cooldown one probe is let through: its success closes the circuit (no restart), its failure
 * opens it again.
 */

const use = closeAfterEach(afterEach);

/** A TCP server the test owns: in `reset` mode it accepts and destroys every connection (counted); in `http` mode it answers 200. */
class FlakyUpstream {
  mode: 'reset' | 'http' = 'reset';
  connections = 0;
  readonly server: Server;
  readonly sockets = new Set<Socket>();

  constructor() {
    this.server = createServer((socket) => {
      this.connections++;
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      if (this.mode === 'reset') return void socket.resetAndDestroy();
      socket.once('data', () => {
        socket.end('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{"ok":true}');
      });
    });
  }

  async start(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.server.close();
    await once(this.server, 'close');
  }
}

let flaky: FlakyUpstream | undefined;
afterEach(async () => {
  await flaky?.close();
  flaky = undefined;
});

async function gatewayFor(url: string) {
  return use.gateway({
    upstreams: { app: { targets: [{ url }], retries: 0, passiveHealth: { failures: 3, cooldown: '1s' } } },
    routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app' }],
  });
}

describe('an upstream that fails', () => {
  it('resets: 3 × 502, then the circuit opens (503 at once, Retry-After, no connection); after the cooldown one probe closes it again', async () => {
    flaky = new FlakyUpstream();
    const gw = await gatewayFor(await flaky.start());
    const codes: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await send(gw.url, '/api/x');
      codes.push(`${res.status} ${problemOf(res).code}`);
    }
    expect(codes).toEqual(['502 RMP_UPSTREAM_UNAVAILABLE', '502 RMP_UPSTREAM_UNAVAILABLE', '502 RMP_UPSTREAM_UNAVAILABLE']);
    await gw.logs.waitFor((l) => l.msg === 'upstream target failing; circuit open for the cooldown');
    const tried = flaky.connections;
    const started = performance.now();
    const open = await send(gw.url, '/api/x');
    const fastMs = performance.now() - started;
    expect([open.status, problemOf(open).code, open.headers['retry-after']]).toEqual([503, 'RMP_UPSTREAM_CIRCUIT_OPEN', '1']);
    expect(flaky.connections).toBe(tried); // nothing was sent
    // The upstream comes back. Until the cooldown is over the circuit stays open; then one probe closes it.
    flaky.mode = 'http';
    let res = open;
    const deadline = Date.now() + 10_000;
    while (res.status === 503 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50)); // a time-based state: a short pause between tries, bounded
      res = await send(gw.url, '/api/x');
    }
    expect(res.status).toBe(200);
    await gw.logs.waitFor((l) => l.msg === 'upstream target answered the probe; circuit closed');
    for (let i = 0; i < 3; i++) expect((await send(gw.url, '/api/x')).status).toBe(200);
    console.log(`[faults] circuit open answered in ${fastMs.toFixed(1)} ms without a connection; closed by the first probe after the 1 s cooldown`);
  });

  it('a probe that fails opens the circuit again for another cooldown (flapping)', async () => {
    flaky = new FlakyUpstream();
    const gw = await gatewayFor(await flaky.start());
    for (let i = 0; i < 3; i++) await send(gw.url, '/api/x');
    await gw.logs.waitFor((l) => l.msg === 'upstream target failing; circuit open for the cooldown');
    // Still resetting after the cooldown: the probe fails (one connection), the circuit opens again.
    let res = await send(gw.url, '/api/x');
    const before = flaky.connections;
    const deadline = Date.now() + 10_000;
    while (flaky.connections === before && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      res = await send(gw.url, '/api/x');
    }
    expect([res.status, problemOf(res).code]).toEqual([502, 'RMP_UPSTREAM_UNAVAILABLE']); // the probe's own answer
    expect(flaky.connections).toBe(before + 1); // exactly one probe
    await gw.logs.waitFor((l) => l.msg === 'upstream target failing; circuit open for the cooldown' && l.probe === true);
    const again = await send(gw.url, '/api/x');
    expect([again.status, problemOf(again).code]).toEqual([503, 'RMP_UPSTREAM_CIRCUIT_OPEN']);
    expect(flaky.connections).toBe(before + 1);
  });

  it('refuses connections (nothing listens): the same circuit, and /metrics counts circuit_open', async () => {
    const probe = new FlakyUpstream();
    const url = await probe.start();
    await probe.close(); // the port is free now: connections are refused
    const gw = await use.gateway({
      admin: { enabled: true, listen: { host: '127.0.0.1', port: 0 }, token: 'faults-admin-token-0123456789abcdef' },
      upstreams: { app: { targets: [{ url }], retries: 0, passiveHealth: { failures: 2, cooldown: '1h' } } },
      routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app' }],
    });
    const codes: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await send(gw.url, '/api/x');
      codes.push(`${res.status} ${problemOf(res).code}`);
    }
    expect(codes).toEqual(['502 RMP_UPSTREAM_UNAVAILABLE', '502 RMP_UPSTREAM_UNAVAILABLE', '503 RMP_UPSTREAM_CIRCUIT_OPEN', '503 RMP_UPSTREAM_CIRCUIT_OPEN']);
    const metrics = await send(gw.runtime.adminUrl!, '/metrics', { headers: { authorization: 'Bearer faults-admin-token-0123456789abcdef' } });
    expect(metrics.text).toMatch(/rampart_upstream_errors_total\{route="api",upstream="app",kind="circuit_open"\} 2/);
    expect(metrics.text).toMatch(/rampart_upstream_errors_total\{route="api",upstream="app",kind="unavailable"\} 2/);
  });
});
