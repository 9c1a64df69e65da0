import { afterEach, describe, expect, it } from 'vitest';
import { closeAfterEach, type TestUpstream } from './helpers/gateway.js';
import { send } from './helpers/http.js';

/** W3C Trace Context through the gateway, over real HTTP to a real upstream (server.tracing). */

const use = closeAfterEach(afterEach);
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;
const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_PARENT = '00f067aa0ba902b7';

let upstream: TestUpstream;

async function setup(server: Record<string, unknown> = {}) {
  upstream = await use.upstream();
  return use.gateway({
    server,
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app' }],
  });
}

function sent(): { traceparent: string | undefined; tracestate: string | undefined } {
  const headers = upstream.requests.at(-1)!.headers;
  return { traceparent: headers.traceparent as string | undefined, tracestate: headers.tracestate as string | undefined };
}

describe('trace context', () => {
  it('starts a trace when the client sends none: a valid traceparent, sampled, with the trace id in the access log', async () => {
    const gw = await setup();
    const res = await send(gw.url, '/api/a');
    expect(res.status).toBe(200);
    const { traceparent, tracestate } = sent();
    const m = TRACEPARENT.exec(traceparent ?? '');
    expect(m, traceparent).not.toBeNull();
    expect(m![1]).not.toBe('0'.repeat(32));
    expect(m![2]).not.toBe('0'.repeat(16));
    expect(m![3]).toBe('01');
    expect(tracestate).toBeUndefined();
    const line = await gw.logs.waitFor((l) => l.type === 'access');
    expect(line.traceId).toBe(m![1]);
    // Another request, another trace.
    await send(gw.url, '/api/b');
    expect(TRACEPARENT.exec(sent().traceparent!)![1]).not.toBe(m![1]);
  });

  it('continues a valid incoming trace: same trace id and sampled flag, the gateway as the new parent', async () => {
    const gw = await setup();
    for (const flags of ['01', '00', '03', 'ff']) {
      await send(gw.url, '/api/a', { headers: { traceparent: `00-${CLIENT_TRACE}-${CLIENT_PARENT}-${flags}`, tracestate: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE' } });
      const { traceparent, tracestate } = sent();
      const m = TRACEPARENT.exec(traceparent ?? '')!;
      expect(m, traceparent).not.toBeNull();
      expect(m[1]).toBe(CLIENT_TRACE);
      expect(m[2]).not.toBe(CLIENT_PARENT);
      expect(m[3]).toBe((parseInt(flags, 16) & 1) === 1 ? '01' : '00');
      expect(tracestate).toBe('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE');
    }
    const lines = gw.logs.lines.filter((l) => l.type === 'access');
    expect(lines.map((l) => l.traceId)).toEqual([CLIENT_TRACE, CLIENT_TRACE, CLIENT_TRACE, CLIENT_TRACE]);
  });

  it('replaces a malformed traceparent (never forwarded as sent) and drops the tracestate with it', async () => {
    const gw = await setup();
    const hostile = [
      '',
      'garbage',
      `01-${CLIENT_TRACE}-${CLIENT_PARENT}-01`, // unknown version
      `ff-${CLIENT_TRACE}-${CLIENT_PARENT}-01`,
      `00-${CLIENT_TRACE.toUpperCase()}-${CLIENT_PARENT}-01`,
      `00-${'0'.repeat(32)}-${CLIENT_PARENT}-01`,
      `00-${CLIENT_TRACE}-${'0'.repeat(16)}-01`,
      `00-${CLIENT_TRACE}-${CLIENT_PARENT}-1`,
      `00-${CLIENT_TRACE}-${CLIENT_PARENT}-01-extra`,
      `00-${CLIENT_TRACE}-${CLIENT_PARENT}-0g`,
      `00_${CLIENT_TRACE}_${CLIENT_PARENT}_01`,
      `00-${CLIENT_TRACE}-${CLIENT_PARENT}-01`.repeat(20),
    ];
    for (const value of hostile) {
      await send(gw.url, '/api/a', { headers: { traceparent: value, tracestate: 'rojo=00f067aa0ba902b7' } });
      const { traceparent, tracestate } = sent();
      expect(traceparent, value).toMatch(TRACEPARENT);
      expect(traceparent).not.toBe(value);
      expect(traceparent).not.toContain(CLIENT_TRACE);
      expect(traceparent!.endsWith('-01')).toBe(true);
      expect(tracestate, value).toBeUndefined();
    }
    // Two traceparent headers: ambiguous, replaced.
    await send(gw.url, '/api/a', { headers: { traceparent: [`00-${CLIENT_TRACE}-${CLIENT_PARENT}-01`, `00-${CLIENT_TRACE}-${CLIENT_PARENT}-00`] } });
    expect(sent().traceparent).not.toContain(CLIENT_TRACE);
  });

  it('forwards tracestate only when well-formed and at most 512 bytes', async () => {
    const gw = await setup();
    const parent = `00-${CLIENT_TRACE}-${CLIENT_PARENT}-01`;
    const cases: [string | string[], string | undefined][] = [
      ['rojo=00f067aa0ba902b7', 'rojo=00f067aa0ba902b7'],
      ['tenant@vendor=abc, other=x y', 'tenant@vendor=abc, other=x y'],
      [['a=1', 'b=2'], 'a=1, b=2'], // several headers combine into one list
      ['a=1,,b=2', 'a=1,,b=2'], // empty members are allowed
      [`a=${'v'.repeat(253)},b=${'v'.repeat(253)}`, `a=${'v'.repeat(253)},b=${'v'.repeat(253)}`], // 511 bytes
      [Array.from({ length: 40 }, (_, i) => `k${i}=${'v'.repeat(10)}`).join(','), undefined], // 40 members, > 512 bytes
      [Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(','), undefined], // 33 members
      [`a=${'v'.repeat(254)},b=${'v'.repeat(254)}`, undefined], // 513 bytes
      [`k=${'v'.repeat(257)}`, undefined], // a value of more than 256 characters
      ['UPPER=1', undefined],
      ['a=1,a=2', undefined], // duplicate key
      ['novalue', undefined],
      ['a=b=c', undefined],
      ['a=x ,\tb=y', 'a=x ,\tb=y'], // OWS around members
      ['a=\u00e9', undefined],
      ['', undefined],
      [',', undefined],
    ];
    for (const [value, expected] of cases) {
      await send(gw.url, '/api/a', { headers: { traceparent: parent, tracestate: value } });
      expect(sent().tracestate, JSON.stringify(value)).toBe(expected);
    }
  });

  it('with server.tracing false, forwards both headers as sent and logs no trace id', async () => {
    const gw = await setup({ tracing: false });
    await send(gw.url, '/api/a', { headers: { traceparent: 'garbage', tracestate: 'x' } });
    expect(sent()).toEqual({ traceparent: 'garbage', tracestate: 'x' });
    await send(gw.url, '/api/a');
    expect(sent().traceparent).toBeUndefined();
    const line = await gw.logs.waitFor((l) => l.type === 'access');
    expect(line.traceId).toBeNull();
  });

  it('logs the client trace id for a request that is refused before the upstream', async () => {
    const gw = await setup();
    await send(gw.url, '/nope', { headers: { traceparent: `00-${CLIENT_TRACE}-${CLIENT_PARENT}-01` } });
    const line = await gw.logs.waitFor((l) => l.type === 'access');
    expect(line).toMatchObject({ status: 404, traceId: CLIENT_TRACE });
    expect(upstream.requests).toHaveLength(0);
  });
});
