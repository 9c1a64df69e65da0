// The scanner's vulnerable fixture (test/fixtures/vulnerable) as a process, for `bench/scan.js`:
// `node --import tsx bench/scan-fixture.ts <all|secure>` prints one JSON line (url, httpUrl,
// openapi, cert) and serves until SIGTERM. HTTPS with a plain-HTTP listener, 127.0.0.1 only.
import { everyVulnerability, startVulnerableApi } from '../test/fixtures/vulnerable/index.js';
import { loopbackCertificate } from '../test/fixtures/vulnerable/transport.js';

const variant = process.argv[2] ?? 'secure';
const switches = variant === 'all' ? everyVulnerability() : {};
const api = await startVulnerableApi(switches, await loopbackCertificate());
process.stdout.write(`${JSON.stringify({ url: api.url, httpUrl: api.httpUrl, openapi: api.openapi, cert: api.cert })}\n`);
process.once('SIGTERM', () => {
  void api.close().then(() => process.exit(0));
});
