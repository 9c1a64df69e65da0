import { createPrivateKey } from 'node:crypto';
import { SignJWT } from 'jose';
import { parseDuration } from '../../config/units.js';
import type { Consumer } from '../../gateway/context.js';
import { definePolicy } from '../define.js';
import { ConsumerTokenSchema } from './schema.js';

/**
 * The consumer, as a short-lived JWT signed by the gateway (`sub`, `consumer_type`, `scope`,
 * `roles`), so an upstream can check who is calling instead of trusting a header. A token is
 * reused for half its lifetime per consumer (signing costs more than the rest of a request), and
 * a client-sent header of the same name is removed.
 */
export const consumerTokenPolicy = definePolicy({
  name: 'consumer-token',
  phase: 'forward',
  description: 'Passes the consumer upstream as a short-lived JWT signed by the gateway.',
  schema: ConsumerTokenSchema,
  create(options) {
    const key = createPrivateKey(options.privateKey);
    if (key.type !== 'private') throw new Error('privateKey must be a private key');
    const fits: Record<string, string[]> = { ES256: ['ec'], ES384: ['ec'], RS256: ['rsa'], PS256: ['rsa', 'rsa-pss'], EdDSA: ['ed25519', 'ed448'] };
    if (!fits[options.algorithm]!.includes(key.asymmetricKeyType ?? '')) throw new Error(`a ${key.asymmetricKeyType ?? 'unknown'} key cannot sign ${options.algorithm}`);
    const ttlMs = parseDuration(options.ttl);
    if (ttlMs < 5000 || ttlMs > 3_600_000) throw new Error('ttl must be between 5s and 1h');
    const issued = new Map<Consumer, { token: string; renewAt: number }>();
    const sign = (consumer: Consumer, now: number) =>
      new SignJWT({ consumer_type: consumer.type, scope: consumer.scopes.join(' '), roles: [...consumer.roles], ...(consumer.keyId !== undefined ? { key_id: consumer.keyId } : {}) })
        .setProtectedHeader({ alg: options.algorithm, typ: 'JWT', ...(options.keyId !== undefined ? { kid: options.keyId } : {}) })
        .setIssuer(options.issuer)
        .setAudience(options.audience)
        .setSubject(consumer.id)
        .setIssuedAt(Math.floor(now / 1000))
        .setExpirationTime(Math.floor((now + ttlMs) / 1000))
        .sign(key);
    return {
      hides: [options.header],
      async request(req) {
        const consumer = req.consumer;
        if (consumer === undefined) return;
        const now = Date.now();
        let entry = issued.get(consumer);
        if (entry === undefined || entry.renewAt <= now) {
          entry = { token: await sign(consumer, now), renewAt: now + ttlMs / 2 };
          if (issued.size >= 10_000) issued.delete(issued.keys().next().value!);
          issued.set(consumer, entry);
        }
        req.upstreamHeaders = { ...req.upstreamHeaders, [options.header]: entry.token };
      },
    };
  },
});
