import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RampartError } from '../errors/problem.js';

/** What a revocation check needs of a token (times in seconds since the epoch, as in JWT claims). */
export interface TokenRef {
  jti?: string | undefined;
  sub?: string | undefined;
  iat?: number | undefined;
}

/**
 * The one revocation interface (DESIGN.md): a `jti` denylist and a per-subject not-before time.
 * The jwt policy checks it on every request, cached token or not; the identity service feeds it.
 */
export interface Revocation {
  readonly kind: 'memory' | 'redis';
  /** Synchronous when the answer is known locally; a promise when Redis must be asked. */
  isRevoked(token: TokenRef): boolean | Promise<boolean>;
  /** Refuses the token with this `jti` until `expiresAt` (its `exp`: after it, it is refused anyway). */
  revokeToken(jti: string, expiresAt: number): Promise<void>;
  /** Refuses every token of `sub` issued before `notBefore` (logout everywhere, password change). */
  revokeSubject(sub: string, notBefore: number): Promise<void>;
}

const nowSeconds = () => Date.now() / 1000;

/** One process's revocations. */
export class MemoryRevocation implements Revocation {
  readonly kind = 'memory' as const;
  readonly #tokens = new Map<string, number>();
  readonly #subjects = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;

  constructor() {
    this.#timer = setInterval(() => {
      const now = nowSeconds();
      for (const [jti, exp] of this.#tokens) if (exp <= now) this.#tokens.delete(jti);
    }, 60_000);
    this.#timer.unref();
  }

  isRevoked(token: TokenRef): boolean {
    if (token.jti !== undefined) {
      const exp = this.#tokens.get(token.jti);
      if (exp !== undefined && exp > nowSeconds()) return true;
    }
    if (token.sub !== undefined) {
      const notBefore = this.#subjects.get(token.sub);
      if (notBefore !== undefined && (token.iat === undefined || token.iat < notBefore)) return true;
    }
    return false;
  }

  revokeToken(jti: string, expiresAt: number): Promise<void> {
    this.#tokens.set(jti, expiresAt);
    return Promise.resolve();
  }

  revokeSubject(sub: string, notBefore: number): Promise<void> {
    this.#subjects.set(sub, Math.max(notBefore, this.#subjects.get(sub) ?? 0));
    return Promise.resolve();
  }

  close(): void {
    clearInterval(this.#timer);
  }
}

/** How long a subject's not-before time is kept in Redis (longer than any token lives). */
const SUBJECT_TTL_S = 90 * 86_400;
/** A local answer is trusted at most this long even without an invalidation message. */
const LOCAL_MAX_AGE_MS = 60_000;

/**
 * Revocations in Redis, shared by every process and node. Answers are cached in this process and
 * dropped when any process revokes (a message on `<prefix>rv`), so a revoked token is refused
 * everywhere within the time a message takes. While the subscription is down, nothing is cached.
 */
export class RedisRevocation implements Revocation {
  readonly kind = 'redis' as const;
  readonly #redis: Redis;
  readonly #subscriber: Redis;
  readonly #prefix: string;
  readonly #channel: string;
  readonly #cache = new Map<string, { revoked: boolean; notBefore: number; at: number }>();
  #subscribed = false;
  /** Bumped by every invalidation: an answer is cached only if none arrived while it was fetched. */
  #generation = 0;

  constructor(redis: Redis, prefix: string, logger: Logger) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#channel = `${prefix}rv`;
    this.#subscriber = redis.duplicate({ enableOfflineQueue: true });
    this.#subscriber.on('error', () => {
      this.#subscribed = false;
      this.#cache.clear();
    });
    this.#subscriber.on('ready', () => {
      this.#subscriber.subscribe(this.#channel).then(
        () => {
          this.#cache.clear();
          this.#subscribed = true;
        },
        (error: Error) => logger.warn({ err: error.message }, 'revocation: cannot subscribe; answers are not cached'),
      );
    });
    this.#subscriber.on('close', () => {
      this.#subscribed = false;
      this.#cache.clear();
    });
    this.#subscriber.on('message', (_channel: string, key: string) => {
      this.#generation++;
      if (key === '*') this.#cache.clear();
      else this.#cache.delete(key);
    });
  }

  isRevoked(token: TokenRef): boolean | Promise<boolean> {
    const jtiKey = token.jti === undefined ? undefined : `${this.#prefix}rv:jti:{${token.jti}}`;
    const subKey = token.sub === undefined ? undefined : `${this.#prefix}rv:sub:{${token.sub}}`;
    const now = Date.now();
    const jti = jtiKey === undefined ? undefined : this.#fresh(jtiKey, now);
    const sub = subKey === undefined ? undefined : this.#fresh(subKey, now);
    if ((jtiKey === undefined || jti !== undefined) && (subKey === undefined || sub !== undefined)) {
      return this.#judge(jti?.revoked ?? false, sub?.notBefore ?? 0, token);
    }
    const generation = this.#generation;
    return (async () => {
      let revoked: boolean;
      let notBefore: number;
      try {
        [revoked, notBefore] = await Promise.all([
          jtiKey === undefined ? false : this.#redis.exists(jtiKey).then((n) => n === 1),
          subKey === undefined ? 0 : this.#redis.get(subKey).then((v) => (v === null ? 0 : Number(v))),
        ]);
      } catch (error) {
        // Fail closed, as a 503: the token may be revoked and nobody can say.
        throw new RampartError('RMP_AUTH_UNAVAILABLE', { detail: 'Revocations cannot be checked right now.', headers: { 'retry-after': '1' }, cause: error });
      }
      if (this.#subscribed && generation === this.#generation) {
        if (jtiKey !== undefined) this.#remember(jtiKey, { revoked, notBefore: 0, at: now });
        if (subKey !== undefined) this.#remember(subKey, { revoked: false, notBefore, at: now });
      }
      return this.#judge(revoked, notBefore, token);
    })();
  }

  async revokeToken(jti: string, expiresAt: number): Promise<void> {
    const key = `${this.#prefix}rv:jti:{${jti}}`;
    await this.#redis.set(key, '1', 'PXAT', Math.max(Date.now() + 1000, Math.ceil(expiresAt * 1000)));
    await this.#redis.publish(this.#channel, key);
  }

  async revokeSubject(sub: string, notBefore: number): Promise<void> {
    const key = `${this.#prefix}rv:sub:{${sub}}`;
    // Only ever moves forward, atomically.
    await this.#redis.eval(
      "local c = tonumber(redis.call('GET', KEYS[1]) or '0') if tonumber(ARGV[1]) > c then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end return 1",
      1,
      key,
      String(notBefore),
      String(SUBJECT_TTL_S),
    );
    await this.#redis.publish(this.#channel, key);
  }

  close(): void {
    this.#subscriber.disconnect();
    this.#cache.clear();
  }

  #fresh(key: string, now: number) {
    const hit = this.#cache.get(key);
    return hit !== undefined && this.#subscribed && now - hit.at < LOCAL_MAX_AGE_MS ? hit : undefined;
  }

  #remember(key: string, value: { revoked: boolean; notBefore: number; at: number }): void {
    if (this.#cache.size >= 100_000) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(key, value);
  }

  #judge(revoked: boolean, notBefore: number, token: TokenRef): boolean {
    if (revoked) return true;
    return notBefore > 0 && (token.iat === undefined || token.iat < notBefore);
  }
}
