import { isIP } from 'node:net';
import proxyaddr from 'proxy-addr';
import { RampartError } from '../../errors/problem.js';
import { definePolicy } from '../define.js';
import { IpFilterSchema } from './schema.js';

function compile(ranges: readonly string[], what: string): ((address: string) => boolean) | undefined {
  if (ranges.length === 0) return undefined;
  for (const range of ranges) {
    try {
      proxyaddr.compile(range);
    } catch {
      throw new Error(`invalid ${what} entry '${range}': expected an IP address or CIDR range`);
    }
  }
  const matches = proxyaddr.compile([...ranges]);
  return (address) => matches(address, 0);
}

/**
 * Refuses clients by address, before anything else looks at the request. The address is the one
 * the trusted-proxy rules give (`ctx.clientIp`, IPv4-mapped IPv6 already unwrapped), so a client
 * cannot slip past by sending its own X-Forwarded-For.
 */
export const ipFilterPolicy = definePolicy({
  name: 'ip-filter',
  phase: 'transport',
  priority: 900,
  description: 'Allow and deny lists of client addresses (CIDR, IPv4 and IPv6).',
  schema: IpFilterSchema,
  create(options) {
    const deny = compile(options.deny, 'deny');
    const allow = compile(options.allow, 'allow');
    return {
      request(ctx) {
        const ip = ctx.clientIp;
        // An address that is not an IP (a proxy sent `unknown`) matches no range: refuse it rather
        // than let it past a deny list.
        if (isIP(ip) === 0 || (deny !== undefined && deny(ip)) || (allow !== undefined && !allow(ip))) {
          throw new RampartError('RMP_IP_DENIED', { detail: 'Requests from this address are not accepted here.' });
        }
      },
    };
  },
});
