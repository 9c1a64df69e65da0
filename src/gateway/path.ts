import { RampartError } from '../errors/problem.js';

const UNRESERVED = /[A-Za-z0-9._~-]/;
const ESCAPE = /%([0-9A-Fa-f]{2})/g;
/** Separators some upstream treats as `/`: the slash, the backslash, and their escapes. */
const ANY_SEPARATOR = /\/|\\|%2F|%5C/;

/**
 * Normalizes the path of a request target once, before routing, so that what is routed, what
 * policies see and what the upstream receives are the same bytes (RFC 3986 §6.2.2): escapes of
 * unreserved characters are decoded, other escapes get upper-case hex. Refused rather than
 * resolved, because an upstream resolving them differently from us is a classic route bypass:
 * dot segments (also as `%2e`, after `;params`, or between `\`, `%2F`, `%5C`), a raw backslash,
 * and a fragment. Returns the path without the query; throws RMP_REQUEST_MALFORMED.
 */
export function normalizePath(path: string): string {
  if (path.charCodeAt(0) !== 47 /* / */) {
    throw new RampartError('RMP_REQUEST_MALFORMED', { detail: 'Only origin-form request targets ("/path") are accepted.' });
  }
  if (path.includes('\\')) {
    throw new RampartError('RMP_REQUEST_MALFORMED', { detail: 'A backslash is not allowed in the path; send it as %5C.' });
  }
  let out = path;
  if (out.includes('%')) {
    out = out.replace(ESCAPE, (_, hex: string) => {
      const char = String.fromCharCode(parseInt(hex, 16));
      return UNRESERVED.test(char) ? char : `%${hex.toUpperCase()}`;
    });
    if (/%(?![0-9A-F]{2})/.test(out)) {
      throw new RampartError('RMP_REQUEST_MALFORMED', { detail: 'The path has an invalid percent-encoding.' });
    }
  }
  if (out.includes('.') && hasDotSegment(out)) {
    throw new RampartError('RMP_REQUEST_MALFORMED', { detail: 'Dot segments ("." and "..") are not allowed in the path.' });
  }
  return out;
}

function hasDotSegment(path: string): boolean {
  for (const segment of path.split(ANY_SEPARATOR)) {
    const semicolon = segment.indexOf(';');
    const name = semicolon === -1 ? segment : segment.slice(0, semicolon);
    if (name === '.' || name === '..') return true;
  }
  return false;
}

/**
 * Splits `url` into path and query (query includes its `?`, or is ''). A raw `#` is refused: a
 * request target has no fragment (RFC 9112 §3.2), and routers and upstreams disagree on where a
 * path with one ends.
 */
export function splitUrl(url: string): [path: string, query: string] {
  if (url.includes('#')) {
    throw new RampartError('RMP_REQUEST_MALFORMED', { detail: 'A request target cannot contain "#".' });
  }
  const q = url.indexOf('?');
  return q === -1 ? [url, ''] : [url.slice(0, q), url.slice(q)];
}

const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

export interface CanonicalHost {
  /** Lowercased, trailing dot removed, port kept: what is forwarded as Host / X-Forwarded-Host. */
  header: string;
  /** The same without the port: what host-scoped routes match on. */
  name: string;
}

/**
 * Validates and canonicalizes the Host header: a DNS name, an IPv4 address or a bracketed IPv6
 * address, with an optional port; `Example.COM.` and `example.com` are one host. Anything else
 * (userinfo, escapes, spaces) is refused rather than forwarded. `undefined` when there is none.
 */
export function canonicalHost(host: string | undefined): CanonicalHost | undefined {
  if (host === undefined || host === '') return undefined;
  // Nearly every request of a deployment carries one of a few Host values: remember the
  // canonical form of the valid ones (bounded, so a client cycling through hosts cannot grow it).
  const known = hostCache.get(host);
  if (known !== undefined) return known;
  if (host.length > 300 || !HOST.test(host)) {
    throw new RampartError('RMP_REQUEST_MALFORMED', { detail: 'The Host header is not a valid host name.' });
  }
  let header = host.toLowerCase();
  let name = header;
  let port = '';
  const colon = header.lastIndexOf(':');
  if (colon !== -1 && colon > header.lastIndexOf(']')) {
    name = header.slice(0, colon);
    port = header.slice(colon);
  }
  if (name.endsWith('.')) {
    name = name.slice(0, -1);
    header = name + port;
  }
  const canonical: CanonicalHost = Object.freeze({ header, name });
  if (hostCache.size >= HOST_CACHE_SIZE) hostCache.clear();
  hostCache.set(host, canonical);
  return canonical;
}

const HOST_CACHE_SIZE = 256;
const hostCache = new Map<string, CanonicalHost>();
