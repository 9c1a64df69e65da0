import { maskUrl } from '../observability/redact.js';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { MemoryStore } from '../ratelimit/store.js';
import { RedisStore } from '../ratelimit/redis.js';
import { MemoryRevocation, RedisRevocation, type Revocation } from '../revocation/revocation.js';

export interface RedisSettings {
  url: string;
  keyPrefix: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
}

/**
 * State that outlives a config reload (a reload must not reset anyone's rate limit): the
 * process's memory counters and the Redis connection. Created by the runtime, closed at shutdown.
 */
export class Stores {
  readonly memory: MemoryStore;
  /** Revocations of this process (used when no Redis is configured). */
  readonly memoryRevocation = new MemoryRevocation();
  readonly #logger: Logger;
  readonly #connect: boolean;
  #redis: { settings: RedisSettings; client: Redis; store: RedisStore; revocation?: RedisRevocation } | undefined;
  readonly #retired: Redis[] = [];

  constructor(logger: Logger, options: { connect?: boolean; now?: () => number } = {}) {
    this.#logger = logger;
    this.#connect = options.connect ?? true;
    this.memory = new MemoryStore({ now: options.now });
  }

  /**
   * The Redis counter store for these settings, connecting on first use. Commands fail at once
   * while Redis is away (no offline queue, bounded command time) and the client reconnects by
   * itself; the limiter decides what a failure means.
   */
  redis(settings: RedisSettings): RedisStore {
    const current = this.#redis;
    if (current !== undefined && JSON.stringify(current.settings) === JSON.stringify(settings)) return current.store;
    if (current !== undefined) this.#retired.push(current.client);
    const client = new Redis(settings.url, {
      lazyConnect: !this.#connect,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: settings.connectTimeoutMs,
      commandTimeout: settings.commandTimeoutMs,
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    });
    let down = false;
    client.on('error', (error: Error) => {
      if (!down) this.#logger.warn({ err: error.message, redis: redactUrl(settings.url) }, 'Redis unavailable; rate limits apply their failure mode until it is back');
      down = true;
    });
    client.on('ready', () => {
      if (down) this.#logger.info({ redis: redactUrl(settings.url) }, 'Redis is back');
      down = false;
    });
    const store = new RedisStore(client, settings.keyPrefix);
    this.#redis = { settings, client, store };
    return store;
  }

  /** The revocation store: Redis-backed (shared, invalidated over pub/sub) when settings are given. */
  revocation(settings: RedisSettings | undefined): Revocation {
    if (settings === undefined) return this.memoryRevocation;
    this.redis(settings);
    const current = this.#redis!;
    current.revocation ??= new RedisRevocation(current.client, settings.keyPrefix, this.#logger);
    return current.revocation;
  }

  /** Whether the Redis connection is ready; undefined when no Redis is in use. */
  redisUp(): boolean | undefined {
    const client = this.#redis?.client;
    return client === undefined ? undefined : client.status === 'ready';
  }

  /** Resolves when Redis (if used) answers, or after `timeoutMs`; never throws. */
  async ready(timeoutMs: number): Promise<boolean> {
    const client = this.#redis?.client;
    if (client === undefined) return true;
    if (client.status === 'ready') return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => (client.off('ready', onReady), resolve(false)), timeoutMs);
      const onReady = () => (clearTimeout(timer), resolve(true));
      client.once('ready', onReady);
    });
  }

  async close(): Promise<void> {
    this.memory.close();
    this.memoryRevocation.close();
    this.#redis?.revocation?.close();
    const clients = [...this.#retired, ...(this.#redis !== undefined ? [this.#redis.client] : [])];
    this.#redis = undefined;
    // QUIT only on a live connection (on a lazy or broken one it would first try to connect).
    await Promise.allSettled(clients.map((c) => (c.status === 'ready' ? c.quit().catch(() => c.disconnect()) : c.disconnect())));
  }
}

/** A Redis URL without its password (in the authority or the query), for logs. */
export function redactUrl(url: string): string {
  try {
    new URL(url);
  } catch {
    return 'redis://(unparseable)';
  }
  return maskUrl(url);
}
