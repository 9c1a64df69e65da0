import { createHash, timingSafeEqual } from 'node:crypto';
import { RampartError } from '../../errors/problem.js';
import type { Consumer, RequestContext } from '../../gateway/context.js';
import { definePolicy } from '../define.js';
import { setConsumer } from '../authn.js';
import { ApiKeySchema } from './schema.js';

/** Where keys come from: the config now, the identity store later (issue 7), through this one method. */
export interface KeySource {
  lookup(hash: Buffer): { id: string; consumer: Consumer } | undefined;
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

    const accept = (req: RequestContext, consumer: Consumer): void => setConsumer(req, consumer, undefined);

    return {
      request(req) {
        if (req.query !== '' && /[?&](?:api_key|apikey|api-key|key)=/i.test(req.query)) {
          throw refuse('RMP_AUTH_INVALID_REQUEST', 'API keys are accepted only in a header');
        }
        // The key never goes upstream, whatever happens next.
        (req.hiddenHeaders ??= []).push(header);
        const value = req.request.raw.headers[header];
        if (value === undefined) {
          if (options.anonymous) return undefined;
          throw refuse('RMP_AUTH_REQUIRED');
        }
        if (typeof value !== 'string' || value.length < 16 || value.length > 512 || value.includes(',')) throw refuse('RMP_AUTH_INVALID_REQUEST', 'Expected one API key');
        const found = source.lookup(createHash('sha256').update(value).digest());
        if (found === undefined) throw refuse('RMP_AUTH_TOKEN_INVALID', 'Unknown API key');
        const revoked = revocation.isRevoked({ jti: `apikey:${found.id}` });
        if (revoked === true) throw refuse('RMP_AUTH_TOKEN_REVOKED', 'The API key has been revoked');
        if (revoked === false) return accept(req, found.consumer);
        return revoked.then((r) => {
          if (r) throw refuse('RMP_AUTH_TOKEN_REVOKED', 'The API key has been revoked');
          accept(req, found.consumer);
        });
      },
    };
  },
});
