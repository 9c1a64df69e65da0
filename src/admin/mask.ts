/**
 * The effective config as the admin API shows it: every secret replaced by `********` — values
 * under keys that name a secret (master keys, passwords, tokens, secrets, private keys, static API
 * keys), and the password of any URL. Structure and every other value stay as they are.
 */

export const MASK = '********';
const SECRET_KEY = /(secret|password|passwd|token|masterkey|privatekey|apikey|credential|^hash$|^hmac)/i;
/** Keys that look secret but hold settings (durations, names, nested objects are walked anyway). */
const NOT_SECRET = new Set(['tokens', 'keyPrefix', 'tokenTtl', 'apiKeys', 'refreshToken', 'passwords', 'tokenHeader']);

export function maskConfig(config: unknown): unknown {
  return walk(config, undefined);
}

function walk(value: unknown, key: string | undefined): unknown {
  const secret = key !== undefined && SECRET_KEY.test(key) && !NOT_SECRET.has(key);
  if (typeof value === 'string') return secret ? MASK : maskUrl(value);
  if (Array.isArray(value)) return value.map((v) => walk(v, secret ? key : undefined));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = walk(v, k);
    return out;
  }
  return value;
}

/** `redis://user:pw@host` → `redis://user:********@host`; anything that is not such a URL as is. */
function maskUrl(value: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/\s]*:[^/\s]*@/i.test(value)) return value;
  try {
    const u = new URL(value);
    if (u.password !== '') u.password = MASK;
    return u.toString();
  } catch {
    return MASK;
  }
}
