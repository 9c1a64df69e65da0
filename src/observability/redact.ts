/**
 * The one redaction list. The logger censors these paths, the access log censors these query
 * parameters, and nothing else decides what is secret.
 */

export const REDACTED = '[REDACTED]';

/** Request and response headers whose values are credentials. */
export const SENSITIVE_HEADERS: readonly string[] = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'api-key',
  'x-auth-token',
  'x-csrf-token',
  'x-xsrf-token',
];

/** Field and query-parameter names whose values are secrets (compared lowercased). */
export const SENSITIVE_FIELDS: readonly string[] = [
  'password',
  'newpassword',
  'currentpassword',
  'passwd',
  'secret',
  'client_secret',
  'client_assertion',
  'assertion',
  'passwordchangetoken',
  'clientsecret',
  'token',
  'access_token',
  'accesstoken',
  'refresh_token',
  'refreshtoken',
  'id_token',
  'idtoken',
  'api_key',
  'apikey',
  'key',
  'code',
  'code_verifier',
  'otp',
  'totp',
  'mfatoken',
  'recoverycode',
  'recoverycodes',
  'signature',
  'sig',
  'x-amz-signature',
  'x-amz-credential',
  'x-amz-security-token',
];

const sensitiveFieldSet = new Set(SENSITIVE_FIELDS);

const MAX_FIELD_LENGTH = Math.max(...SENSITIVE_FIELDS.map((f) => f.length));
const ASCII_ESCAPE = /%([0-7][0-9A-Fa-f])/g;
const asciiChar = (_: string, hex: string) => String.fromCharCode(parseInt(hex, 16));

export function isSensitiveField(name: string): boolean {
  return sensitiveFieldSet.has(name.toLowerCase());
}

/** Objects a log record may carry request data in; secret fields are censored inside them. */
export const LOGGED_CONTAINERS: readonly string[] = ['body', 'query', 'params', 'data', 'input'];

/**
 * pino `redact` paths: credential headers wherever headers are logged, and secret fields inside
 * the containers above. Every path is explicit: pino's wildcard paths cost about 100 µs per line
 * with a list this long (measured: 117 µs vs 5 µs per access line), which would dominate the
 * gateway's per-request CPU. Top-level fields are the log's own vocabulary and never secrets.
 */
export const LOG_REDACT_PATHS: readonly string[] = [
  ...SENSITIVE_HEADERS.flatMap((h) => [`req.headers["${h}"]`, `res.headers["${h}"]`, `headers["${h}"]`]),
  ...LOGGED_CONTAINERS.flatMap((c) => SENSITIVE_FIELDS.map((f) => `${c}["${f}"]`)),
];

/**
 * `/a?x=1&token=abc` → `/a?x=1&token=[REDACTED]`. Keys are compared after percent-decoding so that
 * `%74oken` is caught too; the output keeps the original bytes of everything not redacted.
 */
export function redactQuery(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const parts = url.slice(q + 1).split('&');
  let changed = false;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const eq = part.indexOf('=');
    const rawKey = eq === -1 ? part : part.slice(0, eq);
    // Every sensitive name is ASCII: decoding only ASCII escapes cannot throw and costs no
    // exception per malformed key (a long hostile query would otherwise burn CPU).
    const key = rawKey.length > MAX_FIELD_LENGTH * 3 ? '' : rawKey.replace(/\+/g, ' ').replace(ASCII_ESCAPE, asciiChar);
    if (key !== '' && isSensitiveField(key.trim())) {
      parts[i] = `${rawKey}=${REDACTED}`;
      changed = true;
    }
  }
  return changed ? `${url.slice(0, q)}?${parts.join('&')}` : url;
}

export const MASK = '********';
/** Query parameters that carry credentials in connection strings and webhook URLs. */
const SECRET_PARAM = /(secret|password|passwd|pwd|token|key|sig|signature|auth|credential)/i;

/**
 * A URL with its credentials masked: the password (`redis://user:pw@host`) and every query
 * parameter named like a credential (`?password=…`, `?access_token=…`). Not a URL: as is.
 */
export function maskUrl(value: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return value;
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return /@|\?/.test(value) ? MASK : value;
  }
  let changed = false;
  if (u.password !== '') {
    u.password = MASK;
    changed = true;
  }
  for (const name of [...u.searchParams.keys()]) {
    if (SECRET_PARAM.test(name)) {
      u.searchParams.set(name, MASK);
      changed = true;
    }
  }
  return changed ? u.toString() : value;
}

