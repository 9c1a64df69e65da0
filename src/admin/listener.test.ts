import { afterEach, describe, expect, it } from 'vitest';
import { configIssues } from '../../test/helpers/config.js';
import { loadConfigText } from '../config/load.js';
import { closeAfterEach } from '../../test/helpers/gateway.js';
import { send } from '../../test/helpers/http.js';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const use = closeAfterEach(afterEach);

describe('the admin listener carries credentials: plain HTTP only on loopback', () => {
  it('refuses a non-loopback admin address without admin.tls, and admin.tls without server.tls, with positions', () => {
    expect(configIssues('routes: []\nadmin:\n  listen:\n    host: 0.0.0.0\n    port: 9901\n')).toEqual([
      "rampart.yaml:4:11: admin.listen.host: the admin listener on '0.0.0.0' would carry admin credentials over plain HTTP: bind it to 127.0.0.1 or ::1, or set admin.tls: true",
    ]);
    expect(configIssues('routes: []\nadmin:\n  tls: true\n')).toEqual(["rampart.yaml:3:8: admin.tls: the admin listener uses the gateway's certificate: set server.tls"]);
    expect(configIssues('routes: []\nadmin:\n  token: short\n')[0]).toMatch(/^rampart\.yaml:3:10: .*32 to 1024 letters/);
    // Loopback in any spelling is fine.
    for (const host of ['127.0.0.1', '::1', 'localhost', '127.0.0.2']) loadConfigText(`routes: []\nadmin:\n  listen:\n    host: '${host}'\n`, 'rampart.yaml', '/tmp', {});
  });

  it('admin.tls serves the admin listener over HTTPS with the gateway certificate', async () => {
    const gw = await use.gateway({ mode: 'development', server: { tls: 'auto' }, admin: { enabled: true, tls: true, listen: { host: '127.0.0.1', port: 0 } }, routes: [] });
    const admin = gw.runtime.adminUrl!;
    expect(admin).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const ca = readFileSync(join(dirname(gw.configFile), 'data', 'tls', 'localhost.crt'), 'utf8');
    const health = await send(admin, '/healthz', { ca });
    expect(health.status).toBe(200);
    const api = await send(admin, '/api/overview', { ca });
    expect(api.status).toBe(401);
  });
});
