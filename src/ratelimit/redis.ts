import type { Redis } from 'ioredis';
import type { Decision, LimitSpec } from './algorithms.js';
import type { RateStore } from './store.js';

/**
 * The algorithms of algorithms.ts in one Lua script: read, decide and write are one atomic step
 * in Redis, and the time is Redis's own (`TIME`), so the clocks of the gateway nodes never matter.
 * KEYS[1] is a hash; every write sets its expiry. ARGV: algorithm, limit, window ms, burst, cost,
 * dry run (1/0), and a fixed time in ms for tests ('' in production).
 * Returns { allowed, remaining, resetMs, retryAfterMs }.
 */
const SCRIPT = `
local algorithm = ARGV[1]
local limit = tonumber(ARGV[2])
local w = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local cost = tonumber(ARGV[5])
local dry = ARGV[6] == '1'
local now
if ARGV[7] ~= '' then
  now = tonumber(ARGV[7])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local key = KEYS[1]
local state = redis.call('HMGET', key, 'a', 'b', 'c', 'x')
local expires = tonumber(state[4])
local present = state[1] and expires and expires > now
local a = present and tonumber(state[1]) or nil
local b = present and tonumber(state[2]) or 0
local c = present and tonumber(state[3]) or 0

local function save(na, nb, nc, exp)
  if dry then return end
  redis.call('HSET', key, 'a', string.format('%.17g', na), 'b', nb, 'c', nc, 'x', exp)
  redis.call('PEXPIREAT', key, exp)
end

if algorithm == 'gcra' then
  local interval = w / limit
  local tolerance = interval * burst
  local tat = now
  if a and a > now then tat = a end
  local newTat = tat + interval * cost
  local slack = now * 2.3e-16 * (burst + 2)
  if slack > interval / 2 then slack = interval / 2 end
  local allowAt = newTat - tolerance - slack
  if now < allowAt then
    local remaining = math.floor((now + tolerance - tat) / interval)
    if remaining < 0 then remaining = 0 end
    return { 0, remaining, math.ceil(tat - now), math.ceil(allowAt - now) }
  end
  save(newTat, 0, 0, math.ceil(newTat))
  local left = math.floor((now + tolerance - newTat) / interval)
  if left < 0 then left = 0 end
  return { 1, left, math.ceil(newTat - now), 0 }
end

local index = math.floor(now / w)
local start = index * w
if algorithm == 'fixed-window' then
  local count = 0
  if a == index then count = b end
  local finish = start + w
  if count + cost > limit then
    local remaining = limit - count
    if remaining < 0 then remaining = 0 end
    return { 0, remaining, finish - now, finish - now }
  end
  save(index, count + cost, 0, finish)
  return { 1, limit - count - cost, finish - now, 0 }
end

-- sliding-window
local current, previous = 0, 0
if a == index then
  current, previous = b, c
elseif a == index - 1 then
  previous = b
end
local elapsed = now - start
local estimate = previous * (w - elapsed) / w + current
if estimate + cost > limit then
  local retryAt
  if cost > limit then
    retryAt = start + 2 * w
  elseif current + cost <= limit then
    retryAt = start + math.ceil(w * (1 - (limit - current - cost) / previous))
  else
    retryAt = start + w + math.ceil(w * (1 - (limit - cost) / current))
  end
  local remaining = math.floor(limit - estimate)
  if remaining < 0 then remaining = 0 end
  local reset = start + w - now
  if current > 0 then reset = start + 2 * w - now end
  local wait = retryAt - now
  if wait < 1 then wait = 1 end
  return { 0, remaining, reset, wait }
end
save(index, current + cost, previous, start + 2 * w)
local remaining = math.floor(limit - estimate - cost)
if remaining < 0 then remaining = 0 end
return { 1, remaining, start + 2 * w - now, 0 }
`;

type Reply = [number, number, number, number];

interface RateLimitCommands {
  rampartRateLimit(key: string, ...args: string[]): Promise<Reply>;
}

/**
 * Counters in Redis, shared by every gateway process and node. Keys are
 * `<prefix>rl:{<name>|<key>}`: the braces are a hash tag, so Redis Cluster keeps each counter in
 * one slot. Commands fail fast when Redis is away (no offline queue): the limiter then applies its
 * failure mode.
 */
export class RedisStore implements RateStore {
  readonly kind = 'redis' as const;
  readonly #redis: Redis & RateLimitCommands;
  readonly #prefix: string;
  /** Tests only: a fixed time instead of Redis `TIME`. */
  fixedNow: number | undefined;

  constructor(redis: Redis, prefix: string) {
    if (typeof (redis as Partial<RateLimitCommands>).rampartRateLimit !== 'function') {
      redis.defineCommand('rampartRateLimit', { numberOfKeys: 1, lua: SCRIPT });
    }
    this.#redis = redis as Redis & RateLimitCommands;
    this.#prefix = prefix;
  }

  async consume(key: string, spec: LimitSpec, cost: number, dryRun: boolean): Promise<Decision> {
    const [allowed, remaining, resetMs, retryAfterMs] = await this.#redis.rampartRateLimit(
      this.redisKey(key),
      spec.algorithm,
      String(spec.limit),
      String(spec.windowMs),
      String(spec.burst),
      String(cost),
      dryRun ? '1' : '0',
      this.fixedNow === undefined ? '' : String(this.fixedNow),
    );
    return { allowed: allowed === 1, remaining, resetMs, retryAfterMs };
  }

  async reset(key: string): Promise<void> {
    await this.#redis.del(this.redisKey(key));
  }

  redisKey(key: string): string {
    return `${this.#prefix}rl:{${key}}`;
  }
}
