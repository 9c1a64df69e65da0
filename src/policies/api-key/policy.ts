import { createHash, timingSafeEqual } from 'node:crypto';
import { RampartError } from '../../errors/problem.js';
import type { Consumer, RequestContext } from '../../gateway/context.js';
import { definePolicy } from '../define.js';
import { queryHasName, setConsumer } from '../authn.js';

const KEY_PARAMETERS = new Set(['api_key', 'apikey', 'api-key', 'key', 'access_token']);
import { ApiKeySchema } from './schema.js';

export interface FoundKey {
  id: string;
  consumer: Consumer;
}

/**
 * Where keys come from, by the SHA-256 of the presented key: the config now (synchronous), the
 * identity store later (machine-credentials issue; asynchronous, wrapped in `cachedKeySource`).
 */
export interface KeySource {
  lookup(hash: Buffer): FoundKey | undefined | Promise<FoundKey | undefined>;
}

/**
 * A bounded positive and negative cache in front of a slow key source: a known key is looked up
 * once per `ttlMs`, and so is an unknown one (a flood of made-up keys costs one lookup each, then
 * none for a while). Keyed by the hash, never the key. Revocation is checked by the policy on
 * every request, cached or not.
 */
export function cachedKeySource(source: KeySource, options: { size: number; ttlMs: number; negativeTtlMs: number; now?: () => number }): KeySource {
  const now = options.now ?? Date.now;
  const cache = new Map<string, { found: FoundKey | undefined; until: number }>();
  const remember = (key: string, found: FoundKey | undefined) => {
    cache.delete(key);
    if (cache.size >= options.size) cache.delete(cache.keys().next().value!);
    cache.set(key, { found, until: now() + (found === undefined ? options.negativeTtlMs : options.ttlMs) });
    return found;
  };
  return {
    lookup(hash) {
      const key = hash.toString('base64url');
      const hit = cache.get(key);
      if (hit !== undefined && hit.until > now()) return hit.found;
      const result = source.lookup(hash);
      return result instanceof Promise ? result.then((found) => remember(key, found)) : remember(key, result);
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
    lookup(hash) {
      const found = byHash.get(hash.toString('hex'));
      // The map lookup narrows to one candidate; the final comparison is constant-time.
      return found !== undefined && timingSafeEqual(found.digest, hash) ? { id: found.id, consumer: found.consumer } : undefined;
    },
  };
}

/**
 * API keys in a header, checked against their SHA-256 hashes; the key is never forwarded, never
 * logged, and a key in the query string is refused. Revocation by key id.
 */
export const apiKeyPolicy = definePolicy({
  name: 'api-key',
  phase: 'authenticate',
  description: 'API key authentication (keys held as SHA-256 hashes, revocable by id); 401 when missing or unknown.',
  schema: ApiKeySchema,
  create(options, ctx) {
    if (options.header === 'authorization' || options.header === 'cookie') throw new Error(`header '${options.header}' cannot carry API keys`);
    if (options.revocation === 'redis' && ctx.redis === undefined) throw new Error("revocation 'redis' needs the top-level 'redis' settings");
    const source = configKeySource(options.keys);
    const revocation = ctx.stores.revocation(options.revocation === 'memory' ? undefined : ctx.redis);
    const header = options.header;
    const challenge = `ApiKey realm="rampart", header="${header}"`;
    const refuse = (code: 'RMP_AUTH_REQUIRED' | 'RMP_AUTH_INVALID_REQUEST' | 'RMP_AUTH_TOKEN_INVALID' | 'RMP_AUTH_TOKEN_REVOKED', detail?: string) =>
      new RampartError(code, { detail, headers: { 'www-authenticate': challenge } });

    const accept = (req: RequestContext, consumer: Consumer): void => setConsumer(req, consumer);

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
        const found = source.lookup(createHash('sha256').update(value).digest());
        return found instanceof Promise ? found.then((f) => judge(req, f)) : judge(req, found);
      },
    };

    function judge(req: RequestContext, found: FoundKey | undefined): void | Promise<void> {
      if (found === undefined) throw refuse('RMP_AUTH_TOKEN_INVALID', 'Unknown API key');
      const revoked = revocation.isRevoked({ jti: `apikey:${found.id}` });
      if (revoked === true) throw refuse('RMP_AUTH_TOKEN_REVOKED', 'The API key has been revoked');
      if (revoked === false) return accept(req, found.consumer);
      return revoked.then((r) => {
        if (r) throw refuse('RMP_AUTH_TOKEN_REVOKED', 'The API key has been revoked');
        accept(req, found.consumer);
      });
    }
  },
});
