import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeAfterEach } from '../../../test/helpers/gateway.js';
import { problemOf, send } from '../../../test/helpers/http.js';

const use = closeAfterEach(afterEach);

/** A fake authorization server: its introspection endpoint knows two tokens. */
async function authorizationServer() {
  const calls: { authorization: string | undefined; body: string }[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      calls.push({ authorization: req.headers.authorization, body });
      const token = new URLSearchParams(body).get('token');
      const now = Math.floor(Date.now() / 1000);
      const answer =
        req.headers.authorization !== `Basic ${Buffer.from('rampart:s3cret').toString('base64')}`
          ? { error: 'invalid_client' }
          : token === 'good-opaque-token-1'
            ? { active: true, sub: 'alice', scope: 'notes:read', aud: 'notes', exp: now + 300, roles: ['user'] }
            : { active: false };
      res.writeHead(answer.error !== undefined ? 401 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect`, calls, close: () => new Promise<void>((r) => server.close(() => r())) };
}

async function setup(endpoint: string) {
  const up = await use.upstream();
  const gw = await use.gateway({
    upstreams: { app: { targets: [{ url: up.url }] } },
    routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app', policies: { introspection: { endpoint, clientId: 'rampart', clientSecret: 's3cret', audience: 'notes', timeout: '1s' } } }],
  });
  return { gw, up };
}

describe('introspection policy', () => {
  it('accepts an active token (asking the server once, with client authentication), refuses an inactive one', async () => {
    const as = await authorizationServer();
    try {
      const { gw, up } = await setup(as.url);
      const headers = { authorization: 'Bearer good-opaque-token-1' };
      expect((await send(gw.url, '/api/x', { headers })).status).toBe(200);
      expect((await send(gw.url, '/api/y', { headers })).status).toBe(200);
      expect(as.calls).toHaveLength(1); // the second answer came from the cache
      expect(as.calls[0]!.body).toBe('token=good-opaque-token-1&token_type_hint=access_token');
      expect(up.requests[0]!.headers['x-consumer-id']).toBe('alice');
      expect(up.requests[0]!.headers.authorization).toBeUndefined();
      const inactive = await send(gw.url, '/api/x', { headers: { authorization: 'Bearer revoked-or-unknown' } });
      expect(inactive.status).toBe(401);
      expect(problemOf(inactive).code).toBe('RMP_AUTH_TOKEN_INVALID');
      expect(inactive.headers['www-authenticate']).toBe('Bearer realm="rampart", error="invalid_token", error_description="The token is not active"');
      expect(up.requests).toHaveLength(2);
    } finally {
      await as.close();
    }
  });

  it('fails closed with 503 when the authorization server cannot be reached', async () => {
    const as = await authorizationServer();
    const url = as.url;
    await as.close();
    const { gw, up } = await setup(url);
    const res = await send(gw.url, '/api/x', { headers: { authorization: 'Bearer good-opaque-token-1' } });
    expect(res.status).toBe(503);
    expect(problemOf(res).code).toBe('RMP_AUTH_UNAVAILABLE');
    expect(up.requests).toHaveLength(0);
  });
});
