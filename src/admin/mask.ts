/**
 * The effective config as the admin API shows it: every secret replaced by `********` — values
 * under keys that name a secret (master keys, passwords, tokens, secrets, private keys, static API
 * keys), and the password of any URL. Structure and every other value stay as they are.
 */

import { MASK, maskUrl } from '../observability/redact.js';

export { MASK };
const SECRET_KEY = /(secret|password|passwd|token|masterkey|privatekey|apikey|credential|^hash$|^hmac)/i;

/** Keys that look secret but hold settings (durations, names, nested objects are walked anyway). */
const NOT_SECRET = new Set(['tokens', 'keyPrefix', 'tokenTtl', 'apiKeys', 'refreshToken', 'passwords', 'tokenHeader']);

export function maskConfig(config: unknown): unknown {
  return walk(config, undefined);
}

function walk(value: unknown, key: string | undefined, path: readonly string[] = []): unknown {
  const secret = key !== undefined && SECRET_KEY.test(key) && !NOT_SECRET.has(key);
  if (typeof value === 'string') {
    if (secret) return MASK;
    // A webhook URL is itself the credential of many receivers (Slack, Teams): scheme and host only.
    if (key === 'url' && path[0] === 'alerts') return originOnly(value);
    return maskUrl(value);
  }
  if (Array.isArray(value)) return value.map((v) => walk(v, secret ? key : undefined, path));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = walk(v, k, [...path, k]);
    return out;
  }
  return value;
}

function originOnly(value: string): string {
  try {
    const u = new URL(value);
    return `${u.protocol}//${u.host}/${MASK}`;
  } catch {
    return MASK;
  }
}
