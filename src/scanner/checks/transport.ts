import { findingFrom, type FindingFields } from '../finding.js';
import { firstHeader, ScanRequestError, type ScanResponse } from '../http.js';
import { isThrottled } from '../throttle.js';
import type { Check, Finding, ScanContext } from '../types.js';
import {
  BROKEN_SUITES,
  CBC_SHA1_SUITES,
  EVERY_CIPHER,
  helloProbe,
  tlsHandshake,
  WEAK_SUITES,
  WIDE_CLIENT,
  type Outcome,
  type Peer,
  type Suite,
} from './transport-probe.js';

/**
 * Transport security: is there HTTPS, does plain HTTP send clients to it, which TLS versions and
 * cipher suites the server agrees to, its certificate's expiry and key, and HSTS. Handshakes go
 * through `ctx.http.acquire` (rate and budget) one at a time; a handshake the server declines is
 * "not supported" and a connection that cannot be made decides nothing: neither is ever a finding.
 * One finding per host and id.
 */

const ID = 'transport';
/** Per handshake: a declined one answers at once; this only bounds a server that never answers. */
export const HANDSHAKE_TIMEOUT_MS = 5000;
/**
 * Probes per scan, at most (handshakes and HTTP requests together): six handshakes (a normal one
 * for the certificate, TLS 1.0, TLS 1.1, NULL/anonymous/export suites, RC4/DES/3DES suites when the
 * former were declined, CBC-SHA1 suites), one plain-HTTP request and, for an http:// target that
 * redirects or has HTTPS on 443, one HTTPS request to read HSTS.
 */
export const MAX_PROBES = 8;
/** HSTS max-age below this (180 days, what the HSTS preload list and scanners ask) is short. */
export const HSTS_MIN_SECONDS = 15_552_000;
/** A certificate expiring within this many days is reported. */
export const EXPIRY_WARNING_DAYS = 30;
const MIN_RSA_BITS = 2048;
const REDIRECTS = new Set([301, 302, 307, 308]);
const DAY_MS = 86_400_000;

const HTTPS_REMEDIATION =
  'Serve the API over HTTPS only (TLS 1.2 or newer), answer plain HTTP with a 308 redirect to the same path over HTTPS (or refuse it), and send Strict-Transport-Security. In Rampart: server.tls, and server.http for the redirecting listener.';
const TLS_REMEDIATION =
  "Accept TLS 1.2 and 1.3 only, with ECDHE key exchange and AEAD ciphers (AES-GCM, ChaCha20-Poly1305): Mozilla's \"intermediate\" configuration. Rampart's default (server.tls.minVersion and ciphers) is exactly that.";

function peerOf(origin: URL): Peer {
  return { host: origin.hostname.replace(/^\[|\]$/g, ''), port: origin.port === '' ? 443 : Number(origin.port) };
}

async function probe(ctx: ScanContext, what: string, run: () => Promise<Outcome>): Promise<Outcome> {
  await ctx.http.acquire(what);
  return run();
}

/** The https: URL a 301/302/307/308 answer sends the client to, if it does. */
export function httpsRedirect(res: ScanResponse): URL | undefined {
  if (!REDIRECTS.has(res.status)) return undefined;
  const location = firstHeader(res.headers, 'location');
  if (location === undefined) return undefined;
  try {
    const url = new URL(location, res.request.url);
    return url.protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A plain-HTTP answer that keeps the client on plain HTTP: content (2XX) or a redirect that is not
 * to HTTPS. An error status (403, 421, 426…) refuses plain HTTP, which is as good as redirecting.
 */
function servesPlain(res: ScanResponse): boolean {
  if (httpsRedirect(res) !== undefined) return false;
  return (res.status >= 200 && res.status < 300) || (res.status >= 300 && res.status < 400);
}

/** Why a request failed, in a word when the error has a code (OpenSSL's messages carry source paths). */
function failure(error: ScanRequestError): string {
  return (error.cause as { code?: string } | undefined)?.code ?? error.message;
}

function exchange(res: ScanResponse): string {
  const location = firstHeader(res.headers, 'location');
  return `${res.request.method} ${new URL(res.request.url).pathname} → ${res.status}${location === undefined ? '' : ` (Location: ${location})`}`;
}

function finding(res: ScanResponse, fields: Omit<FindingFields, 'owasp'>): Finding {
  return findingFrom(ID, res, { ...fields, owasp: 'API8:2023' });
}

/** A finding shown by a handshake, not an HTTP exchange: the evidence is the offer and the server's answer. */
function tlsFinding(origin: URL, fields: Omit<FindingFields, 'owasp'>, offer: string, outcome: Extract<Outcome, { kind: 'accepted' }>): Finding {
  const cipher = outcome.standardName !== outcome.cipher ? `${outcome.cipher} (${outcome.standardName})` : outcome.cipher;
  const lines = [`ServerHello: ${outcome.protocol}, ${cipher}`];
  if (outcome.certificate !== undefined) lines.push(`certificate: ${describeCertificate(outcome)}`);
  return {
    check: ID,
    ...fields,
    owasp: 'API8:2023',
    location: { method: 'TLS', url: origin.href, host: origin.host },
    evidence: { request: `TLS ClientHello to ${origin.host}\n${offer}`, response: lines.join('\n') },
  };
}

function keyOf(outcome: Extract<Outcome, { kind: 'accepted' }>): { type: string; bits: number | undefined } {
  const key = outcome.certificate!.publicKey;
  const details = key.asymmetricKeyDetails ?? {};
  return { type: key.asymmetricKeyType ?? 'unknown', bits: details.modulusLength };
}

function describeCertificate(outcome: Extract<Outcome, { kind: 'accepted' }>): string {
  const cert = outcome.certificate!;
  const key = keyOf(outcome);
  const curve = cert.publicKey.asymmetricKeyDetails?.namedCurve;
  return `subject ${cert.subject.replace(/\n/g, ', ')}; issuer ${cert.issuer.replace(/\n/g, ', ')}; valid from ${cert.validFrom} to ${cert.validTo}; key ${key.type.toUpperCase()} ${key.bits !== undefined ? `${key.bits} bits` : (curve ?? '')}`.trim();
}

// --- Plain HTTP ---------------------------------------------------------------------------------

/** Where plain HTTP of an https:// target listens: `--http-url`, or port 80 when the target is on 443. */
function plainAddress(ctx: ScanContext): URL | undefined {
  if (ctx.httpUrl !== undefined) return ctx.httpUrl;
  return ctx.target.port === '' ? new URL(`http://${ctx.target.hostname}/`) : undefined;
}

/** A path the HTTPS side answered with content, so a plain answer can be compared with something real. */
function contentPath(ctx: ScanContext, origin: URL): string {
  const served = ctx.observed.find((r) => new URL(r.request.url).origin === origin.origin && r.status >= 200 && r.status < 300);
  const url = new URL(served?.request.url ?? ctx.target.href);
  return `${url.pathname}${url.search}`;
}

async function judgePlainListener(ctx: ScanContext, plain: URL, https: URL): Promise<Finding | undefined> {
  const url = plain.pathname === '/' && plain.search === '' ? new URL(contentPath(ctx, https), plain) : plain;
  let res: ScanResponse;
  try {
    res = await ctx.http.send({ url });
  } catch (error) {
    if (!(error instanceof ScanRequestError)) throw error;
    // No plain-HTTP listener on port 80 is the best answer there is; a given --http-url that does not answer is worth saying.
    if (ctx.httpUrl !== undefined) ctx.skip(ID, `plain HTTP not judged: --http-url ${ctx.httpUrl.href} does not answer (${failure(error)})`);
    return undefined;
  }
  if (!servesPlain(res)) return undefined;
  return finding(res, {
    id: 'transport.no-redirect',
    title: `Plain HTTP on ${url.host} serves the API instead of redirecting to HTTPS`,
    severity: 'medium',
    confidence: 'high',
    detail: `${exchange(res)} over plain HTTP, next to ${https.origin}: a client that types or follows an http:// link sends its request and credentials in the clear and is never moved to HTTPS.`,
    remediation: HTTPS_REMEDIATION,
  });
}

// --- TLS ----------------------------------------------------------------------------------------

async function judgeTls(ctx: ScanContext, origin: URL, first: Outcome | undefined): Promise<Finding[]> {
  const peer = peerOf(origin);
  const hp = origin.host;
  const findings: Finding[] = [];
  const wide = `versions TLSv1–TLSv1.3, the default suites (OpenSSL security level 0)`;
  const normal = first ?? (await probe(ctx, `TLS handshake with ${hp} (certificate)`, () => tlsHandshake(peer, WIDE_CLIENT, HANDSHAKE_TIMEOUT_MS)));
  if (normal.kind === 'closed' || normal.kind === 'unreachable' || normal.kind === 'not-tls') {
    ctx.skip(ID, `TLS not judged: no handshake with ${hp} (${normal.reason})`);
    return findings;
  }
  if (normal.kind === 'accepted' && normal.certificate !== undefined) findings.push(...judgeCertificate(origin, normal, wide));
  else ctx.skip(ID, `certificate not judged: the handshake with ${hp} did not complete (${normal.kind === 'accepted' ? 'no certificate' : normal.reason})`);

  // Versions: one handshake each, offering only that version and every suite OpenSSL has.
  const old: Extract<Outcome, { kind: 'accepted' }>[] = [];
  for (const [version, label] of [['TLSv1', 'TLS 1.0'], ['TLSv1.1', 'TLS 1.1']] as const) {
    const outcome = await probe(ctx, `${label} handshake with ${hp}`, () => tlsHandshake(peer, { minVersion: version, maxVersion: version, ciphers: EVERY_CIPHER }, HANDSHAKE_TIMEOUT_MS));
    if (outcome.kind === 'accepted') old.push(outcome);
    else if (outcome.kind === 'inconclusive') ctx.skip(ID, `${label} not judged on ${hp}: ${outcome.reason}`);
  }
  if (old.length > 0) {
    const tls10 = old.some((o) => o.protocol === 'TLSv1');
    const shown = old.map((o) => `${o.protocol} with ${o.cipher}`).join('; ');
    findings.push(
      tlsFinding(origin, {
        id: 'transport.tls-version',
        title: `${hp} accepts ${old.map((o) => o.protocol).join(' and ')}`,
        severity: tls10 ? 'high' : 'medium',
        confidence: 'high',
        detail: `Handshakes offering only an old version succeeded: ${shown}. TLS 1.0 and 1.1 are deprecated (RFC 8996): CBC-only suites (BEAST, Lucky13), SHA-1 in the handshake, no AEAD.`,
        remediation: TLS_REMEDIATION,
      }, `versions ${old[0]!.protocol} only, every suite (${EVERY_CIPHER})`, old[0]!),
    );
  }

  // Suites: a TLS 1.2 hello offering only one family; whatever the server picks is in it.
  const offer = (family: string, suites: readonly Suite[]) => `version TLSv1.2, only ${family} suites: ${suites.map((s) => s.name).join(', ')}`;
  const hello = async (family: string, suites: readonly Suite[]) => {
    const outcome = await probe(ctx, `TLS 1.2 handshake with ${hp} offering ${family} suites`, () => helloProbe(peer, suites, HANDSHAKE_TIMEOUT_MS));
    if (outcome.kind === 'inconclusive') ctx.skip(ID, `${family} suites not judged on ${hp}: ${outcome.reason}`);
    return outcome;
  };
  let weak = await hello('NULL, anonymous and export', BROKEN_SUITES);
  let family = 'NULL, anonymous and export';
  let suites = BROKEN_SUITES;
  if (weak.kind !== 'accepted') {
    family = 'RC4, DES, 3DES and IDEA';
    suites = WEAK_SUITES;
    weak = await hello(family, suites);
  }
  if (weak.kind === 'accepted') {
    const broken = suites === BROKEN_SUITES;
    findings.push(
      tlsFinding(origin, {
        id: 'transport.weak-cipher',
        title: `${hp} accepts a weak cipher suite: ${weak.cipher}`,
        severity: broken ? 'high' : 'medium',
        confidence: 'high',
        detail: `Offered only ${family} suites, the server picked ${weak.cipher} (${weak.protocol}): ${broken ? 'no encryption, no server authentication or export-grade keys: an attacker on the path reads or impersonates' : 'RC4 is biased and 64-bit-block ciphers (3DES, IDEA) fall to Sweet32; single DES is brute-forced'}.`,
        remediation: TLS_REMEDIATION,
      }, offer(family, suites), weak),
    );
  }
  const cbc = await hello('CBC-SHA1', CBC_SHA1_SUITES);
  // In TLS 1.0 and 1.1 CBC is all there is, and the version finding says so.
  if (cbc.kind === 'accepted' && cbc.protocol === 'TLSv1.2') {
    findings.push(
      tlsFinding(origin, {
        id: 'transport.legacy-cipher',
        title: `${hp} accepts CBC suites with SHA-1 in TLS 1.2: ${cbc.cipher}`,
        severity: 'low',
        confidence: 'high',
        detail: `Offered only CBC suites with a SHA-1 MAC, the server picked ${cbc.cipher} (TLSv1.2). MAC-then-encrypt CBC has a history of padding oracles (Lucky13); not broken in practice, but no modern client needs it.`,
        remediation: TLS_REMEDIATION,
      }, offer('CBC-SHA1', CBC_SHA1_SUITES), cbc),
    );
  }
  return findings;
}

function judgeCertificate(origin: URL, normal: Extract<Outcome, { kind: 'accepted' }>, offer: string): Finding[] {
  const cert = normal.certificate!;
  const findings: Finding[] = [];
  const notAfter = Date.parse(cert.validTo);
  const remediation = 'Renew the certificate before it expires, automatically (ACME), and alert on expiry well ahead; in Rampart a renewed certificate is picked up on reload (SIGHUP).';
  if (Number.isFinite(notAfter)) {
    const days = (notAfter - Date.now()) / DAY_MS;
    if (days < 0) {
      findings.push(
        tlsFinding(origin, {
          id: 'transport.cert-expired',
          title: `The certificate of ${origin.host} expired on ${cert.validTo}`,
          severity: 'high',
          confidence: 'high',
          detail: `The certificate (${cert.subject.replace(/\n/g, ', ')}) was valid until ${cert.validTo}, ${Math.floor(-days)} day(s) ago: clients refuse it, or are taught to click through warnings.`,
          remediation,
        }, offer, normal),
      );
    } else if (days <= EXPIRY_WARNING_DAYS) {
      findings.push(
        tlsFinding(origin, {
          id: 'transport.cert-expiring',
          title: `The certificate of ${origin.host} expires on ${cert.validTo}`,
          severity: 'medium',
          confidence: 'high',
          detail: `The certificate (${cert.subject.replace(/\n/g, ', ')}) is valid until ${cert.validTo}, in ${Math.floor(days)} day(s) (reported within ${EXPIRY_WARNING_DAYS} days).`,
          remediation,
        }, offer, normal),
      );
    }
  }
  const key = keyOf(normal);
  if ((key.type === 'rsa' || key.type === 'rsa-pss' || key.type === 'dsa') && key.bits !== undefined && key.bits < MIN_RSA_BITS) {
    findings.push(
      tlsFinding(origin, {
        id: 'transport.cert-weak-key',
        title: `The certificate of ${origin.host} has a ${key.bits}-bit ${key.type.toUpperCase()} key`,
        severity: 'medium',
        confidence: 'high',
        detail: `A ${key.bits}-bit ${key.type.toUpperCase()} key is below the ${MIN_RSA_BITS} bits every CA and browser has required since 2013; it is within reach of a well-funded attacker.`,
        remediation: 'Issue a new certificate with an RSA key of 2048 bits or more, or an ECDSA P-256 key.',
      }, offer, normal),
    );
  }
  return findings;
}

// --- HSTS ---------------------------------------------------------------------------------------

/** max-age of a Strict-Transport-Security value (RFC 6797 §6.1); undefined when there is no valid one (browsers ignore the header then). */
export function hstsMaxAge(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  let maxAge: number | undefined;
  for (const directive of value.split(';')) {
    const m = /^\s*max-age\s*=\s*(?:"(\d+)"|(\d+))\s*$/i.exec(directive);
    if (m === null) continue;
    if (maxAge !== undefined) return undefined; // a directive twice makes the header invalid
    maxAge = Number(m[1] ?? m[2]);
  }
  return maxAge;
}

function place(res: ScanResponse): string {
  return `${res.request.method} ${new URL(res.request.url).pathname} (${res.status})`;
}

const MAX_LISTED = 5;

async function judgeHsts(ctx: ScanContext, origin: URL, path: string | undefined): Promise<Finding[]> {
  // A throttled answer (429, 503) often comes from another layer (a limiter, a CDN): not judged.
  let answers = ctx.observed.filter((r) => new URL(r.request.url).origin === origin.origin && !isThrottled(r));
  if (answers.length === 0) {
    const url = new URL(path ?? contentPath(ctx, origin), origin);
    try {
      answers = [await ctx.http.send({ url })];
    } catch (error) {
      if (!(error instanceof ScanRequestError)) throw error;
      ctx.skip(ID, `HSTS not judged: GET ${url.href} failed (${failure(error)})`);
      return [];
    }
  }
  const missing: ScanResponse[] = [];
  let shortest: { res: ScanResponse; maxAge: number } | undefined;
  for (const res of answers) {
    const maxAge = hstsMaxAge(firstHeader(res.headers, 'strict-transport-security'));
    // max-age=0 tells the browser to forget the host: HSTS switched off.
    if (maxAge === undefined || maxAge === 0) missing.push(res);
    else if (shortest === undefined || maxAge < shortest.maxAge) shortest = { res, maxAge };
  }
  const remediation = `Send Strict-Transport-Security: max-age=31536000; includeSubDomains on every HTTPS answer, errors included (at least ${HSTS_MIN_SECONDS} s, 180 days). Rampart's headers policy does by default.`;
  if (missing.length > 0) {
    const where = missing.length <= MAX_LISTED ? missing.map(place).join(', ') : `${missing.slice(0, MAX_LISTED).map(place).join(', ')} and ${missing.length - MAX_LISTED} more`;
    const value = firstHeader(missing[0]!.headers, 'strict-transport-security');
    return [
      finding(missing[0]!, {
        id: 'transport.hsts-missing',
        title: `Strict-Transport-Security missing on ${origin.host}`,
        severity: 'medium',
        confidence: 'high',
        detail: `${value === undefined ? 'No Strict-Transport-Security header' : `Strict-Transport-Security: ${value} (no valid max-age above 0)`} on ${where}: a browser that once used HTTPS can still be downgraded to plain HTTP by anyone on the path (SSL stripping).`,
        remediation,
      }),
    ];
  }
  if (shortest !== undefined && shortest.maxAge < HSTS_MIN_SECONDS) {
    return [
      finding(shortest.res, {
        id: 'transport.hsts-short',
        title: `Strict-Transport-Security max-age on ${origin.host} is short (${shortest.maxAge} s)`,
        severity: 'low',
        confidence: 'high',
        detail: `Strict-Transport-Security: ${firstHeader(shortest.res.headers, 'strict-transport-security')} on ${place(shortest.res)}: max-age=${shortest.maxAge} is under ${HSTS_MIN_SECONDS} s (180 days); the protection lapses between visits.`,
        remediation,
      }),
    ];
  }
  return [];
}

// --- The check ----------------------------------------------------------------------------------

async function run(ctx: ScanContext): Promise<Finding[]> {
  const findings: Finding[] = [];
  const target = ctx.target;
  let https: URL | undefined;
  /** The normal handshake, when finding HTTPS already made it. */
  let first: Outcome | undefined;
  /** Where to read HSTS when no HTTPS answer was seen yet: the path plain HTTP redirected to. */
  let hstsPath: string | undefined;

  if (target.protocol === 'https:') {
    https = new URL(target.origin);
    const plain = plainAddress(ctx);
    if (plain === undefined) ctx.skip(ID, `plain HTTP not judged: ${target.host} is not on port 443, so where plain HTTP listens is unknown; pass --http-url URL (the plain-HTTP address of the same API)`);
    else {
      const f = await judgePlainListener(ctx, plain, https);
      if (f !== undefined) findings.push(f);
    }
  } else {
    // The target is plain HTTP itself: its answer (the crawl's first) says whether it redirects.
    const seen = ctx.observed.find((r) => new URL(r.request.url).origin === target.origin);
    const res = seen ?? (await ctx.http.send({ url: target }));
    const redirect = httpsRedirect(res);
    if (redirect !== undefined) {
      if (redirect.hostname === target.hostname) {
        https = new URL(redirect.origin);
        hstsPath = `${redirect.pathname}${redirect.search}`;
      }
      else ctx.skip(ID, `TLS not judged: plain HTTP redirects to another host (${redirect.origin}); scan that URL`);
    } else {
      const candidate = new URL(`https://${target.hostname}/`);
      first = await probe(ctx, `TLS handshake with ${candidate.host}:443 (is there HTTPS?)`, () => tlsHandshake(peerOf(candidate), WIDE_CLIENT, HANDSHAKE_TIMEOUT_MS));
      if (first.kind === 'accepted') {
        https = candidate;
        const served = ctx.observed.find((r) => new URL(r.request.url).origin === target.origin && servesPlain(r)) ?? (servesPlain(res) ? res : undefined);
        if (served !== undefined) {
          findings.push(
            finding(served, {
              id: 'transport.no-redirect',
              title: `Plain HTTP on ${target.host} serves the API instead of redirecting to HTTPS`,
              severity: 'medium',
              confidence: 'high',
              detail: `${exchange(served)} over plain HTTP, while ${candidate.host}:443 speaks TLS (${first.protocol}): clients of this address send requests and credentials in the clear and are never moved to HTTPS.`,
              remediation: HTTPS_REMEDIATION,
            }),
          );
        }
      } else if (first.kind === 'closed' || first.kind === 'not-tls') {
        findings.push(
          finding(res, {
            id: 'transport.no-https',
            title: `${target.host} is served over plain HTTP, with no HTTPS`,
            severity: 'high',
            // HTTPS may still listen on a port nobody told the scan about.
            confidence: 'medium',
            detail: `${exchange(res)} over plain HTTP, with no redirect to HTTPS, and ${candidate.hostname}:443 does not speak TLS (${first.reason}): every request, credentials and tokens included, crosses the network readable and alterable.`,
            remediation: HTTPS_REMEDIATION,
          }),
        );
      } else {
        ctx.skip(ID, `could not tell whether ${candidate.hostname}:443 serves HTTPS (${first.reason})`);
      }
    }
  }
  if (https !== undefined) {
    findings.push(...(await judgeTls(ctx, https, first)));
    findings.push(...(await judgeHsts(ctx, https, hstsPath)));
  }
  return findings;
}

export const transportCheck: Check = {
  id: ID,
  title: 'Transport security (HTTPS, TLS, certificate, HSTS)',
  owasp: 'API8:2023',
  description:
    `Plain HTTP must redirect to HTTPS (the target if http://, else --http-url or port 80); TLS handshakes offering only TLS 1.0, only TLS 1.1, only NULL/anonymous/export, RC4/DES/3DES or CBC-SHA1 suites must be declined; the certificate must not expire within ${EXPIRY_WARNING_DAYS} days nor have an RSA key under ${MIN_RSA_BITS} bits; HTTPS answers must carry HSTS with max-age of 180 days or more. At most ${MAX_PROBES} probes; one finding per host and id.`,
  run,
};
