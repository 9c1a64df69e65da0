import { randomBytes, type X509Certificate } from 'node:crypto';
import { connect as netConnect, isIP } from 'node:net';
import { connect as tlsConnect, DEFAULT_CIPHERS, type SecureVersion } from 'node:tls';

/**
 * Single TLS handshakes for the transport check. Each opens one connection, learns what the server
 * agreed to (or that it declined) and closes it; nothing is sent after the handshake.
 *
 * Two kinds: `tlsHandshake` is a real handshake through node:tls (versions, the certificate);
 * `helloProbe` sends a TLS 1.2 ClientHello offering exactly the given cipher suites and reads the
 * suite the ServerHello picks, then hangs up. The second exists because this Node's OpenSSL cannot
 * offer RC4, 3DES, DES or export suites at all (`ERR_SSL_NO_CIPHER_MATCH` even at security level
 * 0), and a probe that cannot offer a suite cannot find a server that accepts it. It builds one
 * record and reads a few fixed fields of the answer: no keys, no encryption.
 */

export type Outcome =
  /** The server agreed: the handshake finished (tlsHandshake) or the ServerHello picked a suite (helloProbe). */
  | { kind: 'accepted'; protocol: string; cipher: string; standardName: string; certificate?: X509Certificate | undefined }
  /** The server answered and declined: an alert, a version we did not offer, or it hung up on our hello. */
  | { kind: 'refused'; reason: string }
  /** Something answered that does not speak TLS (plain HTTP on the port, say). */
  | { kind: 'not-tls'; reason: string }
  /** Nothing listens: the connection was refused. */
  | { kind: 'closed'; reason: string }
  /** No answer is possible: a timeout, no route, no such host. */
  | { kind: 'unreachable'; reason: string }
  /** Our side could not make the offer (the local OpenSSL refused it) or the answer made no sense: nothing learnt. */
  | { kind: 'inconclusive'; reason: string };

export interface Peer {
  /** Host name or IP address (no brackets). */
  host: string;
  port: number;
}

export interface HandshakeOptions {
  minVersion: SecureVersion;
  maxVersion: SecureVersion;
  /** An OpenSSL cipher list (TLS 1.2 and older). */
  ciphers: string;
}

/**
 * Everything this OpenSSL can offer, legacy included. TLS 1.0 and 1.1 need security level 0 on
 * OpenSSL 3: at the default level 1 the client refuses the server's SHA-1 signature
 * (ERR_SSL_LEGACY_SIGALG_DISALLOWED_OR_UNSUPPORTED) and a TLS 1.0 server would look like one that
 * declined.
 */
export const EVERY_CIPHER = 'ALL:@SECLEVEL=0';
/** A normal client's offer that still completes with old servers and weak keys (to read their certificate). */
export const WIDE_CLIENT: HandshakeOptions = { minVersion: 'TLSv1', maxVersion: 'TLSv1.3', ciphers: `${DEFAULT_CIPHERS}:@SECLEVEL=0` };

const UNREACHABLE = new Set(['ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'ENETDOWN']);

/** What a connection error says about the server. */
export function classifyError(error: unknown): Exclude<Outcome, { kind: 'accepted' }> {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const message = (error as Error).message;
  // OpenSSL's messages carry source paths and line numbers; the code (and the alert number) say it all.
  const alert = /SSL alert number (\d+)/.exec(message)?.[1];
  const reason = code.startsWith('ERR_SSL_') ? `${code}${alert === undefined ? '' : ` (alert ${alert})`}` : code === '' ? message : `${code}: ${message}`;
  if (code === 'ECONNREFUSED') return { kind: 'closed', reason };
  if (UNREACHABLE.has(code)) return { kind: 'unreachable', reason };
  // The server hung up on our hello (some servers decline that way instead of with an alert).
  if (code === 'ECONNRESET' || code === 'EPIPE') return { kind: 'refused', reason };
  // An alert from the server: protocol_version, handshake_failure, insufficient_security…
  if (/^ERR_SSL_.*ALERT/.test(code)) return { kind: 'refused', reason };
  // The server answered with a version outside the range we offered.
  if (code === 'ERR_SSL_UNSUPPORTED_PROTOCOL') return { kind: 'refused', reason };
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' || code === 'ERR_SSL_HTTP_REQUEST') return { kind: 'not-tls', reason };
  return { kind: 'inconclusive', reason };
}

function servername(host: string): string | undefined {
  return isIP(host) === 0 ? host : undefined;
}

/** One handshake through node:tls; the socket is always destroyed, the promise never rejects. */
export function tlsHandshake(peer: Peer, options: HandshakeOptions, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    let socket: ReturnType<typeof tlsConnect>;
    try {
      socket = tlsConnect({ host: peer.host, port: peer.port, servername: servername(peer.host), rejectUnauthorized: false, ...options });
    } catch (error) {
      // An offer the local OpenSSL refuses to make (no cipher match, no protocols available).
      resolve({ kind: 'inconclusive', reason: classifyError(error).reason });
      return;
    }
    const timer = setTimeout(() => finish({ kind: 'unreachable', reason: `no answer within ${timeoutMs} ms` }), timeoutMs);
    let done = false;
    function finish(outcome: Outcome): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    }
    socket.once('secureConnect', () => {
      const cipher = socket.getCipher();
      finish({ kind: 'accepted', protocol: socket.getProtocol() ?? 'unknown', cipher: cipher.name, standardName: cipher.standardName, certificate: socket.getPeerX509Certificate() });
    });
    socket.once('error', (error) => finish(classifyError(error)));
    socket.once('close', () => finish({ kind: 'refused', reason: 'the server closed the connection during the handshake' }));
  });
}

/** Cipher suites by IANA code point, for the suites the hello probes offer. */
export interface Suite {
  id: number;
  name: string;
}

const suites = (list: [number, string][]): readonly Suite[] => list.map(([id, name]) => ({ id, name }));

/** No encryption (NULL), no server authentication (anonymous) or export-grade (40/56-bit) keys. */
export const BROKEN_SUITES = suites([
  [0x0001, 'TLS_RSA_WITH_NULL_MD5'],
  [0x0002, 'TLS_RSA_WITH_NULL_SHA'],
  [0x003b, 'TLS_RSA_WITH_NULL_SHA256'],
  [0xc006, 'TLS_ECDHE_ECDSA_WITH_NULL_SHA'],
  [0xc010, 'TLS_ECDHE_RSA_WITH_NULL_SHA'],
  [0xc015, 'TLS_ECDH_anon_WITH_NULL_SHA'],
  [0x0018, 'TLS_DH_anon_WITH_RC4_128_MD5'],
  [0x001b, 'TLS_DH_anon_WITH_3DES_EDE_CBC_SHA'],
  [0x0034, 'TLS_DH_anon_WITH_AES_128_CBC_SHA'],
  [0x003a, 'TLS_DH_anon_WITH_AES_256_CBC_SHA'],
  [0x006c, 'TLS_DH_anon_WITH_AES_128_CBC_SHA256'],
  [0x006d, 'TLS_DH_anon_WITH_AES_256_CBC_SHA256'],
  [0x00a6, 'TLS_DH_anon_WITH_AES_128_GCM_SHA256'],
  [0x00a7, 'TLS_DH_anon_WITH_AES_256_GCM_SHA384'],
  [0xc016, 'TLS_ECDH_anon_WITH_RC4_128_SHA'],
  [0xc017, 'TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA'],
  [0xc018, 'TLS_ECDH_anon_WITH_AES_128_CBC_SHA'],
  [0xc019, 'TLS_ECDH_anon_WITH_AES_256_CBC_SHA'],
  [0x0003, 'TLS_RSA_EXPORT_WITH_RC4_40_MD5'],
  [0x0006, 'TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5'],
  [0x0008, 'TLS_RSA_EXPORT_WITH_DES40_CBC_SHA'],
  [0x0011, 'TLS_DHE_DSS_EXPORT_WITH_DES40_CBC_SHA'],
  [0x0014, 'TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA'],
  [0x0017, 'TLS_DH_anon_EXPORT_WITH_RC4_40_MD5'],
  [0x0019, 'TLS_DH_anon_EXPORT_WITH_DES40_CBC_SHA'],
]);

/** Broken ciphers with authentication: RC4 (biased keystream), single DES, and the 64-bit-block 3DES and IDEA (Sweet32). */
export const WEAK_SUITES = suites([
  [0x0004, 'TLS_RSA_WITH_RC4_128_MD5'],
  [0x0005, 'TLS_RSA_WITH_RC4_128_SHA'],
  [0xc007, 'TLS_ECDHE_ECDSA_WITH_RC4_128_SHA'],
  [0xc011, 'TLS_ECDHE_RSA_WITH_RC4_128_SHA'],
  [0x0009, 'TLS_RSA_WITH_DES_CBC_SHA'],
  [0x0012, 'TLS_DHE_DSS_WITH_DES_CBC_SHA'],
  [0x0015, 'TLS_DHE_RSA_WITH_DES_CBC_SHA'],
  [0x000a, 'TLS_RSA_WITH_3DES_EDE_CBC_SHA'],
  [0x0013, 'TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA'],
  [0x0016, 'TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA'],
  [0xc008, 'TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA'],
  [0xc012, 'TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA'],
  [0x0007, 'TLS_RSA_WITH_IDEA_CBC_SHA'],
]);

/** CBC with a SHA-1 MAC (MAC-then-encrypt: Lucky13-style padding oracles); what TLS 1.0 had, dated in TLS 1.2. */
export const CBC_SHA1_SUITES = suites([
  [0xc009, 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA'],
  [0xc00a, 'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA'],
  [0xc013, 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA'],
  [0xc014, 'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA'],
  [0x0033, 'TLS_DHE_RSA_WITH_AES_128_CBC_SHA'],
  [0x0039, 'TLS_DHE_RSA_WITH_AES_256_CBC_SHA'],
  [0x0032, 'TLS_DHE_DSS_WITH_AES_128_CBC_SHA'],
  [0x0038, 'TLS_DHE_DSS_WITH_AES_256_CBC_SHA'],
  [0x002f, 'TLS_RSA_WITH_AES_128_CBC_SHA'],
  [0x0035, 'TLS_RSA_WITH_AES_256_CBC_SHA'],
  [0x0041, 'TLS_RSA_WITH_CAMELLIA_128_CBC_SHA'],
  [0x0084, 'TLS_RSA_WITH_CAMELLIA_256_CBC_SHA'],
  [0x0045, 'TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA'],
  [0x0088, 'TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA'],
  [0x0096, 'TLS_RSA_WITH_SEED_CBC_SHA'],
]);

const ALERTS: Record<number, string> = { 40: 'handshake_failure', 47: 'illegal_parameter', 50: 'decode_error', 70: 'protocol_version', 71: 'insufficient_security', 80: 'internal_error', 86: 'inappropriate_fallback', 112: 'unrecognized_name' };
const VERSIONS: Record<number, string> = { 0x0300: 'SSLv3', 0x0301: 'TLSv1', 0x0302: 'TLSv1.1', 0x0303: 'TLSv1.2', 0x0304: 'TLSv1.3' };
/** The signaling value asking for secure renegotiation (RFC 5746); some servers expect it. */
const RENEGOTIATION_SCSV = 0x00ff;

const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const u24 = (n: number) => Buffer.from([(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
const vector16 = (body: Buffer) => Buffer.concat([u16(body.length), body]);
const extension = (type: number, body: Buffer) => Buffer.concat([u16(type), vector16(body)]);
const list16 = (values: readonly number[]) => vector16(Buffer.concat(values.map(u16)));

/** A TLS 1.2 ClientHello record (RFC 5246 §7.4.1.2) offering exactly `offered`. */
export function clientHello(host: string, offered: readonly Suite[]): Buffer {
  const extensions = [
    // x25519, secp256r1, secp384r1, secp521r1, ffdhe2048: for ECDHE and DHE suites.
    extension(0x000a, list16([0x001d, 0x0017, 0x0018, 0x0019, 0x0100])),
    extension(0x000b, Buffer.from([1, 0])), // EC point formats: uncompressed
    // RSA-PSS, ECDSA and PKCS#1 with SHA-256/384/512, then the SHA-1 ones old servers need.
    extension(0x000d, list16([0x0804, 0x0805, 0x0806, 0x0403, 0x0503, 0x0603, 0x0401, 0x0501, 0x0601, 0x0201, 0x0203, 0x0202])),
  ];
  const name = servername(host);
  if (name !== undefined) {
    const entry = Buffer.concat([Buffer.from([0]), vector16(Buffer.from(name, 'ascii'))]);
    extensions.unshift(extension(0x0000, vector16(entry)));
  }
  const body = Buffer.concat([
    u16(0x0303),
    randomBytes(32),
    Buffer.from([0]), // no session id
    list16([...offered.map((s) => s.id), RENEGOTIATION_SCSV]),
    Buffer.from([1, 0]), // compression: null only
    vector16(Buffer.concat(extensions)),
  ]);
  const handshake = Buffer.concat([Buffer.from([1]), u24(body.length), body]);
  // The record layer says TLS 1.0, as real clients do, so old servers do not drop the hello.
  return Buffer.concat([Buffer.from([0x16]), u16(0x0301), vector16(handshake)]);
}

/** Reads the ServerHello (or the alert) out of what the server sent so far; undefined: need more bytes. */
export function readServerHello(data: Buffer, offered: readonly Suite[]): Outcome | undefined {
  let handshake = Buffer.alloc(0);
  let at = 0;
  while (data.length >= at + 5) {
    const type = data[at]!;
    if (type < 20 || type > 23 || data[at + 1] !== 3) return { kind: 'not-tls', reason: `the answer is not a TLS record (starts ${JSON.stringify(data.subarray(0, 8).toString('latin1'))})` };
    const length = data.readUInt16BE(at + 3);
    if (data.length < at + 5 + length) return undefined;
    const fragment = data.subarray(at + 5, at + 5 + length);
    if (type === 21) return { kind: 'refused', reason: `alert ${fragment[1] ?? '?'} (${ALERTS[fragment[1] ?? -1] ?? 'unknown'})` };
    if (type !== 22) return { kind: 'inconclusive', reason: `record type ${type} before the ServerHello` };
    handshake = Buffer.concat([handshake, fragment]);
    at += 5 + length;
    if (handshake.length < 4) continue;
    if (handshake[0] !== 2) return { kind: 'inconclusive', reason: `handshake message ${handshake[0]} instead of a ServerHello` };
    // type(1) length(3) version(2) random(32) session_id(1 + n) cipher_suite(2)
    if (handshake.length < 4 + 2 + 32 + 1) continue;
    const sessionLength = handshake[4 + 2 + 32]!;
    const cipherAt = 4 + 2 + 32 + 1 + sessionLength;
    if (handshake.length < cipherAt + 2) continue;
    const version = handshake.readUInt16BE(4);
    const id = handshake.readUInt16BE(cipherAt);
    const suite = offered.find((s) => s.id === id);
    const hex = `0x${id.toString(16).padStart(4, '0')}`;
    // A server that answers with a suite nobody offered is broken, not evidence of anything.
    if (suite === undefined) return { kind: 'inconclusive', reason: `the ServerHello picked ${hex}, which was not offered` };
    return { kind: 'accepted', protocol: VERSIONS[version] ?? `0x${version.toString(16)}`, cipher: suite.name, standardName: `${suite.name} (${hex})` };
  }
  return undefined;
}

/** The ServerHello comes in the first flight; more than this before it is not a TLS server we can read. */
const MAX_ANSWER = 64 * 1024;

/** Sends one ClientHello offering `offered` (TLS 1.2) and reads which suite the server picks; never rejects. */
export function helloProbe(peer: Peer, offered: readonly Suite[], timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: peer.host, port: peer.port });
    let received = Buffer.alloc(0);
    let done = false;
    const timer = setTimeout(() => finish({ kind: 'unreachable', reason: `no answer within ${timeoutMs} ms` }), timeoutMs);
    function finish(outcome: Outcome): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    }
    socket.once('connect', () => socket.write(clientHello(peer.host, offered)));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const outcome = readServerHello(received, offered);
      if (outcome !== undefined) finish(outcome);
      else if (received.length > MAX_ANSWER) finish({ kind: 'inconclusive', reason: 'no ServerHello in the first 64 KiB' });
    });
    socket.once('error', (error) => finish(classifyError(error)));
    socket.once('close', () => finish(received.length === 0 ? { kind: 'refused', reason: 'the server closed the connection on the hello' } : { kind: 'inconclusive', reason: 'the answer ended before the ServerHello was complete' }));
  });
}
