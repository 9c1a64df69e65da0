import { RampartError } from '../errors/problem.js';

const UNRESERVED = /[A-Za-z0-9._~-]/;
const ESCAPE = /%([0-9A-Fa-f]{2})/g;
const DOT_SEGMENT = /(?:^|\/)\.{1,2}(?:\/|$)/;

/**
 * Normalizes the path of a request target once, before routing, so that what is routed, what
 * policies see and what the upstream receives are the same bytes (RFC 3986 §6.2.2): escapes of
 * unreserved characters are decoded, other escapes get upper-case hex. Dot segments (also as
 * `%2e`) are refused rather than resolved: an upstream resolving them differently from us is a
 * classic route-bypass. Returns the path without the query; throws RMP_REQUEST_MALFORMED.
 */
export function normalizePath(path: string): string {
  if (path.charCodeAt(0) !== 47 /* / */) {
    throw new RampartError('RMP_REQUEST_MALFORMED', { detail: 'Only origin-form request targets ("/path") are accepted.' });
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
  if (out.includes('.') && DOT_SEGMENT.test(out)) {
    throw new RampartError('RMP_REQUEST_MALFORMED', { detail: 'Dot segments ("." and "..") are not allowed in the path.' });
  }
  return out;
}

/** Splits `url` into path and query (query includes its `?`, or is ''). */
export function splitUrl(url: string): [path: string, query: string] {
  const q = url.indexOf('?');
  return q === -1 ? [url, ''] : [url.slice(0, q), url.slice(q)];
}

/** Host header without port, lowercased; `undefined` when missing. */
export function hostWithoutPort(host: string | undefined): string | undefined {
  if (host === undefined || host === '') return undefined;
  let end = host.length;
  if (host.charCodeAt(0) === 91 /* [ */) {
    end = host.indexOf(']') + 1 || host.length;
  } else {
    const colon = host.lastIndexOf(':');
    if (colon !== -1) end = colon;
  }
  return host.slice(0, end).toLowerCase();
}
