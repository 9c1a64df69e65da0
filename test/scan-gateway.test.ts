import { afterEach, describe, expect, it } from 'vitest';
import { createHttpClient } from '../src/scanner/http.js';
import { CHECKS, runScan } from '../src/scanner/runner.js';
import { severityRank } from '../src/scanner/types.js';
import { closeAfterEach } from './helpers/gateway.js';
import { startVulnerableApi, type VulnerableApi } from './fixtures/vulnerable/index.js';

/** The scanner and the gateway judge each other: what Rampart fixes by default, the scan no longer finds. */

const use = closeAfterEach(afterEach);
let api: VulnerableApi | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
});

const quiet = { debug: () => {}, warn: () => {} };
/** Both run plain HTTP here (transport.no-https, rightly); Rampart's TLS passes the transport check in scan-transport.test.ts. */
const PLAIN_HTTP_CHECKS = CHECKS.filter((c) => c.id !== 'transport');
async function scan(url: string) {
  const http = createHttpClient({ rate: 1000, budget: 500, timeoutMs: 5000, maxBodyBytes: 65536, insecure: false, logger: quiet, verbose: false });
  try {
    return await runScan({ target: new URL(url), http, logger: quiet, checks: PLAIN_HTTP_CHECKS });
  } finally {
    await http.close();
  }
}

describe('rampart scan through the Rampart gateway', () => {
  it('an upstream with missing headers, version banners and a reflecting CORS: found directly, not through the gateway with its defaults', async () => {
    api = await startVulnerableApi({ missingHeaders: true, versionBanner: true, corsReflect: true });
    const direct = await scan(api.url);
    expect(direct.findings.map((f) => f.id).sort()).toEqual(['cors.reflected-origin', 'headers.missing', 'headers.version-disclosure']);

    const gw = await use.gateway({ upstreams: { app: { targets: [{ url: api.url.replace(/\/$/, '') }] } }, routes: [{ name: 'all', match: { path: '/*' }, upstream: 'app' }] });
    const through = await scan(`${gw.url}/`);
    expect(through.findings.filter((f) => severityRank(f.severity) >= severityRank('medium'))).toEqual([]);
    expect(through.findings.map((f) => f.id)).toEqual([]);
    expect(through.stats.endpoints).toBe(direct.stats.endpoints); // the gateway hides no endpoint of the upstream
  });
});
