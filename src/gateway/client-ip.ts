import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import proxyaddr from 'proxy-addr';

export type TrustFn = (address: string, hop: number) => boolean;

/** Compiles `server.trustedProxies`; `undefined` when no proxy is trusted (the fast path). */
export function compileTrust(entries: readonly string[]): TrustFn | undefined {
  return entries.length === 0 ? undefined : proxyaddr.compile([...entries]);
}

/** Strips the IPv4-mapped prefix so logs and policies see `127.0.0.1`, not `::ffff:127.0.0.1`. */
export function plainAddress(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * The client address: the socket peer, unless that peer is a trusted proxy, in which case
 * `X-Forwarded-For` is walked from the right past trusted hops (proxy-addr's algorithm).
 */
export function clientIp(req: IncomingMessage, trust: TrustFn | undefined): string {
  if (trust === undefined || req.headers['x-forwarded-for'] === undefined) return plainAddress(req.socket.remoteAddress);
  return plainAddress(bareAddress(proxyaddr(req, trust)));
}

/**
 * Some proxies append `ip:port`, `[v6]:port` or a zone (`%eth0`) to X-Forwarded-For: keep the
 * address only, so address lists match it. Anything that is still not an IP is returned as is
 * (policies that judge addresses refuse it).
 */
function bareAddress(value: string): string {
  if (isIP(value) !== 0) return value;
  let v = value.trim();
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(v);
  if (bracketed !== null) v = bracketed[1]!;
  else if (/^[\d.]+:\d{1,5}$/.test(v)) v = v.slice(0, v.lastIndexOf(':'));
  const zone = v.indexOf('%');
  if (zone !== -1) v = v.slice(0, zone);
  return isIP(v) !== 0 ? v : value;
}
