import { afterEach, describe, expect, it } from 'vitest';
import { closeAfterEach } from '../../test/helpers/gateway.js';
import { problemOf, send } from '../../test/helpers/http.js';

const use = closeAfterEach(afterEach);

describe('admin listener', () => {
  it('answers /healthz and /readyz on its own address, and nothing else', async () => {
    const gw = await use.gateway({ admin: { enabled: true, listen: { host: '127.0.0.1', port: 0 } }, routes: [] });
    const admin = gw.runtime.adminUrl!;
    expect(admin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(admin).not.toBe(gw.url);
    const health = await send(admin, '/healthz');
    expect(health.status).toBe(200);
    expect(health.json()).toEqual({ status: 'ok' });
    expect(health.headers['cache-control']).toBe('no-store');
    const ready = await send(admin, '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready', routes: 0 });
    const other = await send(admin, '/admin/secrets');
    expect(other.status).toBe(404);
    expect(problemOf(other).code).toBe('RMP_ROUTE_NOT_FOUND');
    // The gateway listener does not serve the admin endpoints.
    expect((await send(gw.url, '/healthz')).status).toBe(404);
  });
});
