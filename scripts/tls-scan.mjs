#!/usr/bin/env node
// Runs testssl.sh (Debian package `testssl.sh`, command /usr/bin/testssl) against a running HTTPS
// listener. It fails on any finding rated LOW or above — stricter than the usual "no HIGH or
// CRITICAL": testssl rates TLS 1.0/1.1 and CBC suites only LOW or MEDIUM, and a gate that a TLS 1.0
// server passes proves nothing. Excluded, and listed: what a self-signed development certificate on
// localhost cannot pass — certificate trust, expiry and revocation (`cert_*`) and the DNS CAA record.
//
//   node scripts/tls-scan.mjs localhost:8443 [report.json]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const target = process.argv[2];
if (target === undefined) {
  console.error('usage: node scripts/tls-scan.mjs HOST:PORT [report.json]');
  process.exit(2);
}
const report = process.argv[3] ?? join(mkdtempSync(join(tmpdir(), 'testssl-')), 'report.json');
const testssl = process.env.TESTSSL ?? '/usr/bin/testssl';

const started = Date.now();
const run = spawnSync(testssl, ['--quiet', '--color', '0', '--warnings', 'off', '--jsonfile', report, target], { encoding: 'utf8', timeout: 300_000 });
if (run.error !== undefined) {
  console.error(`tls-scan: cannot run ${testssl}: ${run.error.message}`);
  process.exit(2);
}
let findings;
try {
  findings = JSON.parse(readFileSync(report, 'utf8'));
} catch (error) {
  console.error(`tls-scan: testssl wrote no report (exit ${run.status}):\n${run.stdout}\n${run.stderr}\n${error.message}`);
  process.exit(2);
}

const RATED = new Set(['LOW', 'MEDIUM', 'HIGH', 'CRITICAL']);
const EXCLUDED = (id) => id.startsWith('cert_') || id === 'DNS_CAArecord';
const excluded = findings.filter((f) => RATED.has(f.severity) && EXCLUDED(f.id));
const failing = findings.filter((f) => RATED.has(f.severity) && !EXCLUDED(f.id));
const counts = {};
for (const f of findings) counts[f.severity] = (counts[f.severity] ?? 0) + 1;
const pick = (id) => findings.find((f) => f.id === id)?.finding;

console.log(`tls-scan: testssl ${target}: ${findings.length} findings in ${Math.round((Date.now() - started) / 1000)} s (${Object.entries(counts).map(([s, n]) => `${s} ${n}`).join(', ')})`);
for (const id of ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1', 'TLS1_2', 'TLS1_3', 'ALPN', 'cipher_order', 'cipherorder_TLSv1_2', 'cipherorder_TLSv1_3', 'HSTS']) {
  const finding = pick(id);
  if (finding !== undefined) console.log(`  ${id.padEnd(20)} ${finding}`);
}
for (const f of findings.filter((x) => x.severity === 'WARN')) console.log(`  note (testssl could not check): ${f.id}: ${f.finding}`);
for (const f of excluded) console.log(`  excluded (self-signed certificate on localhost): ${f.severity} ${f.id}: ${f.finding}`);
if (failing.length > 0) {
  for (const f of failing) console.error(`  FAIL ${f.severity} ${f.id}: ${f.finding}`);
  console.error(`tls-scan: ${failing.length} finding(s) rated LOW or above`);
  process.exit(1);
}
console.log('tls-scan: no finding rated LOW or above on protocols, ciphers, server preferences, headers or vulnerabilities');
