import { createHash, timingSafeEqual } from 'node:crypto';
import { RampartError } from '../../errors/problem.js';
import type { Consumer, RequestContext } from '../../gateway/context.js';
import type { Revocation } from '../../revocation/revocation.js';
import { definePolicy } from '../define.js';
import { queryHasName, setConsumer } from '../authn.js';

const KEY_PARAMETERS = new Set(['api_key', 'apikey', 'api-key', 'key', 'access_token']);
import { ApiKeySchema } from './schema.js';

export interface FoundKey {
  id: string;
  consumer: Consumer;
  /** ms since the epoch; a key past it is refused (keys of the identity service always expire). */
  expiresAt?: number;
  /** Known, and revoked (or its owner disabled): refused as revoked rather than unknown. */
  revoked?: boolean;
  /** Told when the policy accepts the key (its `lastUsedAt`); never for a refused use. */
  used?: () => void;
}

/**
 * Where keys come from: the config (by SHA-256, synchronous) or the identity service (by HMAC
 * under its pepper, asynchronous and cached). `digest` is the presented key's SHA-256, what caches
 * are keyed by (never the key itself).
 */
export interface KeySource {
  lookup(presented: string, digest: Buffer): FoundKey | undefined | Promise<FoundKey | undefined>;
}

/**
 * A bounded positive and negative cache in front of a slow key source: a known key is looked up
 * once per `ttlMs`, and so is an unknown one (a flood of made-up keys costs one lookup each, then
 * none for a while). Keyed by the hash, never the key. Revocation is checked by the policy on
 * every request, cached or not; `stale` can send a cached key back to the source early (its owner
 * changed since it was loaded).
 */
export function cachedKeySource(
  source: KeySource,
  options: {
    size: number;
    ttlMs: number;
    negativeTtlMs: number;
    now?: () => number;
    stale?: (found: FoundKey, loadedAt: number) => boolean | Promise<boolean>;
  },
): KeySource {
  const now = options.now ?? Date.now;
  const { stale } = options;
  const cache = new Map<string, { found: FoundKey | undefined; until: number; loadedAt: number }>();
  const remember = (key: string, found: FoundKey | undefined, loadedAt: number) => {
    cache.delete(key);
    if (cache.size >= options.size) cache.delete(cache.keys().next().value!);
    cache.set(key, { found, until: loadedAt + (found === undefined ? options.negativeTtlMs : options.ttlMs), loadedAt });
    return found;
  };
  const load = (presented: string, hash: Buffer, key: string) => {
    const loadedAt = now();
    const result = source.lookup(presented, hash);
    return result instanceof Promise ? result.then((found) => remember(key, found, loadedAt)) : remember(key, result, loadedAt);
  };
  return {
    lookup(presented, hash) {
      const key = hash.toString('base64url');
      const hit = cache.get(key);
      if (hit === undefined || hit.until <= now()) return load(presented, hash, key);
      const found = hit.found;
      if (found === undefined) return undefined;
      const decide = (isStale: boolean) => {
        if (isStale) return load(presented, hash, key);
        return found;
      };
      if (stale === undefined) return decide(false);
      const verdict = stale(found, hit.loadedAt);
      return verdict instanceof Promise ? verdict.then(decide) : decide(verdict);
    },
  };
}

/** Keys given as SHA-256 hashes in the config. */
function configKeySource(keys: readonly { id: string; hash: string; consumer?: string | undefined; scopes: string[]; roles: string[] }[]): KeySource {
  const byHash = new Map<string, { id: string; digest: Buffer; consumer: Consumer }>();
  for (const k of keys) {
    const hex = k.hash.slice('sha256:'.length);
    if (byHash.has(hex)) throw new Error(`key '${k.id}' has the same hash as key '${byHash.get(hex)!.id}'`);
    byHash.set(hex, {
      id: k.id,
      digest: Buffer.from(hex, 'hex'),
      consumer: Object.freeze({ id: k.consumer ?? `apikey:${k.id}`, type: 'apiKey' as const, scopes: Object.freeze([...k.scopes]), roles: Object.freeze([...k.roles]), keyId: k.id }),
    });
  }
  return {
    lookup(_presented, hash) {
      const found = byHash.get(hash.toString('hex'));
      // The map lookup narrows to one candidate; the final comparison is constant-time.
      return found !== undefined && timingSafeEqual(found.digest, hash) ? { id: found.id, consumer: found.consumer } : undefined;
    },
  };
}

/**
 * API keys in a header: keys listed in the config (as SHA-256 hashes) or the identity service's
 * (`identity: true`). The key is never forwarded, never logged, and a key in the query string is
 * refused. Revocation by key id, checked on every request.
 */
export const apiKeyPolicy = definePolicy({
  name: 'api-key',
  phase: 'authenticate',
  description: 'API key authentication (keys held as SHA-256 hashes, revocable by id); 401 when missing or unknown.',
  schema: ApiKeySchema,
  create(options, ctx) {
    if (options.header === 'authorization' || options.header === 'cookie') throw new Error(`header '${options.header}' cannot carry API keys`);
    if (options.revocation === 'redis' && ctx.redis === undefined) throw new Error("revocation 'redis' needs the top-level 'redis' settings");
    if ((options.keys === undefined) === !options.identity) throw new Error('give exactly one of keys or identity: true');
    let source: KeySource;
    let revocation: Revocation;
    if (options.identity) {
      const identity = ctx.identity;
      if (identity === undefined) throw new Error("identity: true needs an enabled top-level 'identity' section");
      if (options.revocation !== 'auto') throw new Error('with identity: true, revocations are the identity service\'s (leave revocation at auto)');
      // Undefined while the service is not running (`rampart validate`): refused as unavailable.
      const own = identity.apiKeys;
      source = own ?? { lookup: () => Promise.reject(new RampartError('RMP_AUTH_UNAVAILABLE', { detail: 'The identity service is not running.', headers: { 'retry-after': '5' } })) };
      revocation = identity.revocation ?? ctx.stores.revocation(ctx.redis);
    } else {
      source = configKeySource(options.keys!);
      revocation = ctx.stores.revocation(options.revocation === 'memory' ? undefined : ctx.redis);
    }
    const header = options.header;
    const challenge = `ApiKey realm="rampart", header="${header}"`;
    const refuse = (code: 'RMP_AUTH_REQUIRED' | 'RMP_AUTH_INVALID_REQUEST' | 'RMP_AUTH_TOKEN_INVALID' | 'RMP_AUTH_TOKEN_EXPIRED' | 'RMP_AUTH_TOKEN_REVOKED', detail?: string) =>
      new RampartError(code, { detail, headers: { 'www-authenticate': challenge } });

    const accept = (req: RequestContext, found: FoundKey): void => {
      setConsumer(req, found.consumer);
      found.used?.();
    };

    return {
      // The key never goes upstream, whichever policy of the route decides.
      hides: [header],
      request(req) {
        if (queryHasName(req.query, KEY_PARAMETERS)) throw refuse('RMP_AUTH_INVALID_REQUEST', 'API keys are accepted only in a header');
        const value = req.request.raw.headers[header];
        if (value === undefined) {
          if (options.anonymous) return undefined;
          throw refuse('RMP_AUTH_REQUIRED');
        }
        if (typeof value !== 'string' || value.length < 16 || value.length > 512 || value.includes(',')) throw refuse('RMP_AUTH_INVALID_REQUEST', 'Expected one API key');
        const found = source.lookup(value, createHash('sha256').update(value).digest());
        return found instanceof Promise ? found.then((f) => judge(req, f)) : judge(req, found);
      },
    };

    function judge(req: RequestContext, found: FoundKey | undefined): void | Promise<void> {
      if (found === undefined) throw refuse('RMP_AUTH_TOKEN_INVALID', 'Unknown API key');
      if (found.revoked === true) throw refuse('RMP_AUTH_TOKEN_REVOKED', 'The API key has been revoked');
      if (found.expiresAt !== undefined && found.expiresAt <= Date.now()) throw refuse('RMP_AUTH_TOKEN_EXPIRED', 'The API key has expired');
      const revoked = revocation.isRevoked({ jti: `apikey:${found.id}` });
      if (revoked === true) throw refuse('RMP_AUTH_TOKEN_REVOKED', 'The API key has been revoked');
      if (revoked === false) return accept(req, found);
      return revoked.then((r) => {
        if (r) throw refuse('RMP_AUTH_TOKEN_REVOKED', 'The API key has been revoked');
        accept(req, found);
      });
    }
  },
});
