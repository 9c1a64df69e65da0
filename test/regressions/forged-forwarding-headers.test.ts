// Regression (security review): CGI-style upstreams map `X_Forwarded_For` to the same variable as
// `X-Forwarded-For`, and frameworks read client address, scheme and URL from more headers than
// X-Forwarded-*; all of them passed through from untrusted clients.
import { afterEach, expect, it } from 'vitest';
import { closeAfterEach } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';

const use = closeAfterEach(afterEach);

it('forged-forwarding-headers: underscore spellings and client-address/URL override headers never reach the upstream', async () => {
  const up = await use.upstream();
  const gw = await use.gateway({
    upstreams: { app: { targets: [{ url: up.url }] } },
    routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app' }],
  });
  const forged: Record<string, string> = {
    x_forwarded_for: '6.6.6.6',
    x_forwarded_proto: 'https',
    x_request_id: 'forged',
    'x-client-ip': '6.6.6.6',
    'true-client-ip': '6.6.6.6',
    'x-cluster-client-ip': '6.6.6.6',
    'x-original-url': '/admin',
    'x-rewrite-url': '/admin',
    'x-forwarded-prefix': '/admin',
    'x-forwarded-ssl': 'on',
    'x-forwarded-scheme': 'https',
    'x-url-scheme': 'https',
    'front-end-https': 'on',
  };
  await send(gw.url, '/api/x', { headers: { ...forged, 'x-fine': 'kept' } });
  const seen = up.requests[0]!.headers;
  for (const name of Object.keys(forged)) expect(seen[name], name).toBeUndefined();
  expect(seen['x-fine']).toBe('kept');
  expect(seen['x-forwarded-for']).toBe('127.0.0.1');
  expect(seen['x-forwarded-proto']).toBe('http');
});
