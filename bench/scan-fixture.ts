// The scanner's vulnerable fixture (test/fixtures/vulnerable) as a process, for `bench/scan.js`:
// `node --import tsx bench/scan-fixture.ts <all|secure>` prints one JSON line (url, httpUrl,
// openapi, cert) and serves until SIGTERM. HTTPS with a plain-HTTP listener, 127.0.0.1 only.
import { generate } from 'selfsigned';
import { SECURE, startVulnerableApi, type Vulnerabilities } from '../test/fixtures/vulnerable/index.js';

const variant = process.argv[2] ?? 'secure';
/** Modes of the fixture that are not vulnerabilities. */
const NOT_VULNERABILITIES = new Set(['slowOnce', 'slowDown', 'throttleEveryOther']);
const switches = variant === 'all' ? (Object.fromEntries(Object.keys(SECURE).map((k) => [k, !NOT_VULNERABILITIES.has(k)])) as unknown as Vulnerabilities) : {};
const made = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
  keyType: 'ec',
  curve: 'P-256',
  algorithm: 'sha256',
  extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
});
const api = await startVulnerableApi(switches, { cert: made.cert, key: made.private });
process.stdout.write(`${JSON.stringify({ url: api.url, httpUrl: api.httpUrl, openapi: api.openapi, cert: api.cert })}\n`);
process.once('SIGTERM', () => {
  void api.close().then(() => process.exit(0));
});
