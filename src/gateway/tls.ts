import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { constants, createPrivateKey, X509Certificate } from 'node:crypto';
import { join, resolve } from 'node:path';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { generate } from 'selfsigned';
import { ConfigError, type ConfigIssue } from '../config/errors.js';
import type { LoadedConfig } from '../config/load.js';
import { DEFAULT_CIPHERS } from '../config/schema.js';

/**
 * The HTTPS listener's certificate and TLS settings, read from the config: PEM files, or with
 * `tls: auto` (development) a self-signed localhost certificate kept in `<dataDir>/tls/`.
 * Re-read on every reload so a renewed certificate is picked up with SIGHUP.
 */
export interface TlsMaterial {
  /** Options for `https.createServer` / `server.setSecureContext`. */
  readonly options: SecureContextOptions;
  readonly http2: boolean;
  /** The development certificate's file and SHA-256 fingerprint, when `tls: auto`. */
  readonly dev: { certFile: string; fingerprint: string; created: boolean } | undefined;
  /** Non-fatal findings (certificate expiring, key readable by others), logged at start and reload. */
  readonly warnings: readonly string[];
}

/**
 * Settings every HTTPS listener gets: TLS 1.2 at least (1.0 and 1.1 are never offered), the
 * server's cipher order enforced, ECDHE on modern curves, no renegotiation (a client-triggered
 * CPU sink, and never needed by HTTP/1.1 or HTTP/2 clients).
 */
function hardened(minVersion: 'TLSv1.2' | 'TLSv1.3', ciphers: string): SecureContextOptions {
  return {
    minVersion,
    maxVersion: 'TLSv1.3',
    ciphers,
    honorCipherOrder: true,
    ecdhCurve: 'X25519:prime256v1:secp384r1',
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
  };
}

/** Undefined when `server.tls` is not set. Throws ConfigError (with positions) for unusable files. */
export async function loadTls(loaded: LoadedConfig): Promise<TlsMaterial | undefined> {
  const tls = loaded.config.server.tls;
  if (tls === undefined) return undefined;
  if (tls === 'auto') {
    const dir = resolve(loaded.dir, loaded.config.dataDir, 'tls');
    const dev = await developmentCertificate(dir);
    const options = { ...hardened('TLSv1.2', DEFAULT_CIPHERS), key: dev.key, cert: dev.cert };
    return { options, http2: false, dev: { certFile: dev.certFile, fingerprint: dev.fingerprint, created: dev.created }, warnings: [] };
  }
  const issues: ConfigIssue[] = [];
  const read = (key: 'cert' | 'key' | 'chain', file: string): string | undefined => {
    const path = resolve(loaded.dir, file);
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : String(code ?? error);
      issues.push(loaded.issue(['server', 'tls', key], `cannot read '${file}': ${why}`));
      return undefined;
    }
  };
  const cert = read('cert', tls.cert);
  const key = read('key', tls.key);
  const chain = tls.chain === undefined ? '' : read('chain', tls.chain);
  if (issues.length > 0 || cert === undefined || key === undefined || chain === undefined) throw new ConfigError(issues);

  const warnings: string[] = [];
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch {
    throw new ConfigError([loaded.issue(['server', 'tls', 'cert'], `'${tls.cert}' holds no PEM certificate`)]);
  }
  if (chain !== '') {
    try {
      new X509Certificate(chain);
    } catch {
      throw new ConfigError([loaded.issue(['server', 'tls', 'chain'], `'${tls.chain}' holds no PEM certificate`)]);
    }
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) {
    throw new ConfigError([loaded.issue(['server', 'tls', 'key'], `'${tls.key}' holds no PEM private key`)]);
  }
  if (/ENCRYPTED/.test(key)) {
    throw new ConfigError([loaded.issue(['server', 'tls', 'key'], `'${tls.key}' is encrypted; give an unencrypted key readable only by the gateway's user`)]);
  }
  const options: SecureContextOptions = {
    ...hardened(tls.minVersion ?? 'TLSv1.2', tls.ciphers ?? DEFAULT_CIPHERS),
    key,
    cert: chain === '' ? cert : `${cert.trimEnd()}\n${chain}`,
  };
  try {
    createSecureContext(options);
  } catch (error) {
    const message = (error as Error).message;
    const why = /mismatch/i.test(message) ? `the key in '${tls.key}' does not belong to the certificate in '${tls.cert}'` : /cipher/i.test(message) ? `no usable cipher in the list (${message})` : message;
    throw new ConfigError([loaded.issue(['server', 'tls', /cipher/i.test(message) ? 'ciphers' : 'cert'], why)]);
  }
  const expires = Date.parse(leaf.validTo);
  const days = Math.floor((expires - Date.now()) / 86_400_000);
  if (days < 0) warnings.push(`the certificate in '${tls.cert}' expired on ${leaf.validTo}: clients will refuse it`);
  else if (days < 14) warnings.push(`the certificate in '${tls.cert}' expires in ${days} day(s) (${leaf.validTo}): renew it, then send SIGHUP`);
  try {
    if ((statSync(resolve(loaded.dir, tls.key)).mode & 0o077) !== 0) warnings.push(`the key file '${tls.key}' is readable by other users: chmod 600 it`);
  } catch {
    // Read above; a race with its removal changes nothing here.
  }
  return { options, http2: tls.http2 ?? false, dev: undefined, warnings };
}

const DEV_CERT = 'localhost.crt';
const DEV_KEY = 'localhost.key';
/** Regenerated when fewer days than this are left. */
const DEV_RENEW_DAYS = 30;

/**
 * The development certificate: reused while it has more than 30 days left, otherwise generated
 * (ECDSA P-256, SHA-256, one year, for localhost, 127.0.0.1 and ::1) with `selfsigned`. The key
 * is written with mode 0600.
 */
async function developmentCertificate(dir: string): Promise<{ cert: string; key: string; certFile: string; fingerprint: string; created: boolean }> {
  const certFile = join(dir, DEV_CERT);
  const keyFile = join(dir, DEV_KEY);
  try {
    const cert = readFileSync(certFile, 'utf8');
    const key = readFileSync(keyFile, 'utf8');
    const x509 = new X509Certificate(cert);
    if (Date.parse(x509.validTo) - Date.now() > DEV_RENEW_DAYS * 86_400_000 && x509.checkPrivateKey(createPrivateKey(key))) {
      return { cert, key, certFile, fingerprint: x509.fingerprint256, created: false };
    }
  } catch {
    // Missing, unreadable or broken: make a new one.
  }
  const notBeforeDate = new Date(Date.now() - 60_000);
  const notAfterDate = new Date(notBeforeDate.getTime() + 365 * 86_400_000);
  const pems = await generate([{ name: 'commonName', value: 'localhost' }, { name: 'organizationName', value: 'Rampart development certificate' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeAtomic(keyFile, pems.private, 0o600);
  writeAtomic(certFile, pems.cert, 0o644);
  return { cert: pems.cert, key: pems.private, certFile, fingerprint: new X509Certificate(pems.cert).fingerprint256, created: true };
}

function writeAtomic(file: string, content: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, file);
}
