import ipaddr from 'ipaddr.js';
import { createHash } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import { RampartError } from '../../errors/problem.js';
import { parseDuration } from '../../config/units.js';
import type { RequestContext } from '../../gateway/context.js';
import type { Decision, LimitSpec } from '../../ratelimit/algorithms.js';
import { createLimiter, type Limiter } from '../../ratelimit/limiter.js';
import type { PolicyContext } from '../define.js';

export interface LimitConfig {
  name: string;
  key: readonly string[];
  algorithm: LimitSpec['algorithm'];
  limit: number;
  window: string;
  burst?: number | undefined;
  store: 'auto' | 'memory' | 'redis';
  onStoreFailure: 'open' | 'closed';
}

interface CompiledLimit {
  name: string;
  limiter: Limiter;
  keyOf: (ctx: RequestContext) => string;
  /** `"name";q=100;w=60` */
  policy: string;
  quoted: string;
}

/**
 * Builds the limiters of one policy instance (at config load) and returns the request hook that
 * counts a request against each in turn, and the response hook that writes the RateLimit headers.
 */
export function compileLimits(limits: readonly LimitConfig[], headers: 'all' | 'limited' | 'none', ctx: PolicyContext) {
  const compiled: CompiledLimit[] = limits.map((l) => {
    // The counter is named by the limit's name and its settings: limits of one name share counts
    // only when they count the same way (a fixed window and a GCRA state mean different things).
    const windowMs = parseDuration(l.window);
    const limiter = createLimiter({ ...l, name: `${l.name}@${l.algorithm}:${l.limit}:${windowMs}:${l.burst ?? l.limit}`, label: l.name }, ctx);
    const quoted = JSON.stringify(l.name);
    return {
      name: l.name,
      limiter,
      keyOf: keyFunction(l.key),
      policy: `${quoted};q=${l.limit};w=${Math.ceil(limiter.spec.windowMs / 1000)}`,
      quoted,
    };
  });
  const always = headers === 'all';
  const send = headers !== 'none';

  const record = (req: RequestContext, limit: CompiledLimit, decision: Decision) => {
    if (!send) return;
    (req.rateLimits ??= []).push({ policy: limit.policy, state: `${limit.quoted};r=${decision.remaining};t=${Math.ceil(decision.resetMs / 1000)}`, always, denied: !decision.allowed });
  };
  const deny = (req: RequestContext, limit: CompiledLimit, decision: Decision): never => {
    req.limitedBy = limit.name;
    throw new RampartError('RMP_RATE_LIMITED', {
      detail: `Rate limit '${limit.name}' exceeded.`,
      headers: { 'retry-after': String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))) },
    });
  };

  // Synchronous while the decisions are (memory store); a promise only once one waits on Redis.
  const run = (req: RequestContext, from: number): void | Promise<void> => {
    for (let i = from; i < compiled.length; i++) {
      const limit = compiled[i]!;
      const result = limit.limiter.consume(limit.keyOf(req));
      if (result instanceof Promise) {
        return result.then((decision) => {
          record(req, limit, decision);
          if (!decision.allowed) deny(req, limit, decision);
          return run(req, i + 1);
        });
      }
      record(req, limit, result);
      if (!result.allowed) deny(req, limit, result);
    }
    return undefined;
  };

  return {
    limiters: compiled.map((c) => c.limiter),
    request: (req: RequestContext) => run(req, 0),
  };
}

/** Writes the RateLimit-Policy / RateLimit headers of every limit the request was counted against. */
export function writeRateLimitHeaders(ctx: RequestContext, reply: FastifyReply): void {
  const entries = ctx.rateLimits;
  if (entries === undefined || reply.hasHeader('ratelimit')) return;
  let policy = '';
  let state = '';
  for (const e of entries) {
    if (!e.always && !e.denied) continue;
    policy = policy === '' ? e.policy : `${policy}, ${e.policy}`;
    state = state === '' ? e.state : `${state}, ${e.state}`;
  }
  if (policy === '') return;
  reply.header('ratelimit-policy', policy);
  reply.header('ratelimit', state);
}

/** The counter key of a request: its parts, in order, as `part=value|…` (hashed when long). */
function keyFunction(parts: readonly string[]): (ctx: RequestContext) => string {
  const getters = parts.map((part): ((ctx: RequestContext) => string) => {
    if (part === 'ip') return (c) => `ip=${addressKey(c.clientIp)}`;
    if (part === 'route') return (c) => `route=${c.route.name}`;
    if (part === 'consumer') return (c) => (c.consumer !== undefined ? `consumer=${c.consumer.id}` : `ip=${addressKey(c.clientIp)}`);
    if (part === 'apiKey') return (c) => (c.consumer?.keyId !== undefined ? `apiKey=${c.consumer.keyId}` : `ip=${addressKey(c.clientIp)}`);
    const name = part.slice('header:'.length);
    return (c) => {
      const value = c.request.headers[name];
      return `${name}=${value === undefined ? '' : Array.isArray(value) ? value[0] : value}`;
    };
  });
  // Parts are joined with U+0001, which no header value, address or name can contain: two
  // different part lists can never make the same key.
  const build = getters.length === 1 ? getters[0]! : (c: RequestContext) => getters.map((g) => g(c)).join('\u0001');
  return (c) => {
    const key = build(c);
    return key.length <= 128 ? key : createHash('sha256').update(key).digest('base64url');
  };
}

/**
 * What an address is counted as: an IPv4 address as it is; an IPv6 address by its /64 network.
 * One subscriber usually gets a whole /64 and can use any address in it, so counting single IPv6
 * addresses would let one client rotate through 2^64 fresh counters.
 */
export function addressKey(ip: string): string {
  if (!ip.includes(':')) return ip;
  try {
    const v6 = ipaddr.IPv6.parse(ip);
    if (v6.isIPv4MappedAddress()) return v6.toIPv4Address().toString();
    const parts = v6.parts;
    return `${parts[0]!.toString(16)}:${parts[1]!.toString(16)}:${parts[2]!.toString(16)}:${parts[3]!.toString(16)}::/64`;
  } catch {
    return ip;
  }
}
