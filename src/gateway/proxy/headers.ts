import type { IncomingHttpHeaders } from 'node:http';

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) and headers the gateway owns or that upstream frameworks
 * read as the client's address, scheme or URL. None of them is copied from the client; the
 * gateway sets X-Forwarded-For/-Proto/-Host itself (believing incoming ones only from trusted
 * proxies).
 */
const REQUEST_DROP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'expect',
  'host',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-forwarded-ssl',
  'x-forwarded-scheme',
  'x-forwarded-server',
  'x-real-ip',
  'x-client-ip',
  'true-client-ip',
  'x-cluster-client-ip',
  'x-original-url',
  'x-rewrite-url',
  'x-url-scheme',
  'front-end-https',
]);

const RESPONSE_DROP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/** Extra names the `Connection` header lists are hop-by-hop too. */
function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const list = (Array.isArray(value) ? value.join(',') : value).toLowerCase();
  if (list === 'keep-alive' || list === 'close') return undefined;
  const tokens = new Set<string>();
  for (const token of list.split(',')) {
    const t = token.trim();
    if (t !== '' && t !== 'close' && t !== 'keep-alive') tokens.add(t);
  }
  return tokens.size === 0 ? undefined : tokens;
}

export interface ForwardingInfo {
  /** Value for X-Forwarded-For. */
  forwardedFor: string;
  forwardedProto: string;
  forwardedHost: string | undefined;
  /** Host header to send. */
  host: string | undefined;
}

/** The client's headers minus hop-by-hop ones, plus the forwarding headers and the policies' extras. */
export function upstreamRequestHeaders(
  incoming: IncomingHttpHeaders,
  forwarding: ForwardingInfo,
  extra: Record<string, string> | undefined,
  hidden?: readonly string[],
  routeHidden?: readonly string[],
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const listed = connectionTokens(incoming.connection);
  for (const name in incoming) {
    // Names with '_' are dropped (as nginx does): CGI-style servers map `X_Forwarded_For` and
    // `X-Forwarded-For` to the same variable, which would let a client forge gateway-owned headers.
    // HTTP/2 pseudo-headers (`:method`, `:authority`, …) are not headers: the request line and
    // Host carry them upstream.
    if (REQUEST_DROP.has(name) || name.includes('_') || name.charCodeAt(0) === 58 || (listed !== undefined && listed.has(name))) continue;
    // X-Consumer-* is the gateway's word on who is calling: never the client's.
    if (name.startsWith('x-consumer-') || (hidden !== undefined && hidden.includes(name)) || (routeHidden !== undefined && routeHidden.includes(name))) continue;
    const value = incoming[name];
    if (name === 'cookie' && typeof value === 'string' && value.includes(OWN_COOKIE_PREFIX)) {
      const rest = withoutOwnCookies(value);
      if (rest !== '') out.cookie = rest;
      continue;
    }
    if (value !== undefined) out[name] = value;
  }
  if (forwarding.host !== undefined) out.host = forwarding.host;
  out['x-forwarded-for'] = forwarding.forwardedFor;
  out['x-forwarded-proto'] = forwarding.forwardedProto;
  if (forwarding.forwardedHost !== undefined) out['x-forwarded-host'] = forwarding.forwardedHost;
  if (extra !== undefined) for (const name in extra) out[name] = extra[name]!;
  return out;
}

/** Whether a request has a body: a non-zero Content-Length, or (without one) a Transfer-Encoding. */
export function requestHasBody(headers: IncomingHttpHeaders): boolean {
  const length = headers['content-length'];
  return length !== undefined ? length !== '0' : headers['transfer-encoding'] !== undefined;
}

/** The gateway's own cookies (the identity service's refresh and CSRF cookies in browser mode). */
export const OWN_COOKIE_PREFIX = '__Host-rampart-';

/**
 * A Cookie header (RFC 6265 §4.2.1: pairs separated by "; ") without the gateway's own cookies:
 * an upstream never sees a refresh token, whatever route the browser sent it along to.
 */
export function withoutOwnCookies(header: string): string {
  return header
    .split(';')
    .filter((pair) => !pair.trimStart().startsWith(OWN_COOKIE_PREFIX))
    .map((pair) => pair.trim())
    .filter((pair) => pair !== '')
    .join('; ');
}

/** The upstream's response headers minus hop-by-hop ones. */
export function clientResponseHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const listed = connectionTokens(headers.connection);
  for (const name in headers) {
    if (RESPONSE_DROP.has(name) || (listed !== undefined && listed.has(name))) continue;
    const value = headers[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}
