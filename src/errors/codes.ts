/**
 * The one table of error codes. Every denial Rampart makes is one of these; `docs/errors.md` has
 * an anchor per code and a test keeps the two in step. Codes read `RMP_<AREA>_<REASON>`.
 */
export const errorCodes = {
  RMP_ROUTE_NOT_FOUND: {
    status: 404,
    title: 'No route matches this request',
    doc: 'No configured route matches the request path (and host). Check the route list with `rampart validate`.',
  },
  RMP_METHOD_NOT_ALLOWED: {
    status: 405,
    title: 'Method not allowed on this route',
    doc: 'A route matches the path but not the method. The `Allow` header lists the methods that would match.',
  },
  RMP_METHOD_REFUSED: {
    status: 405,
    title: 'Method refused',
    doc: 'TRACE, TRACK and CONNECT are refused on every listener: they exist for debugging and tunnelling, and are used for cross-site tracing and proxy abuse.',
  },
  RMP_REQUEST_MALFORMED: {
    status: 400,
    title: 'Malformed request',
    doc: 'The request could not be parsed as HTTP, or its URL is not valid (for example a bad percent-encoding).',
  },
  RMP_METHOD_NOT_IMPLEMENTED: {
    status: 501,
    title: 'Method not implemented',
    doc: 'The HTTP parser does not know this method (TRACK and made-up methods end here). Nothing was forwarded.',
  },
  RMP_EXPECTATION_FAILED: {
    status: 417,
    title: 'Expectation failed',
    doc: 'The request has an `Expect` header other than `100-continue`, the only expectation HTTP defines (RFC 9110 §10.1.1). Nothing was forwarded.',
  },
  RMP_UPGRADE_NOT_SUPPORTED: {
    status: 501,
    title: 'Protocol upgrade not supported',
    doc: 'The request asks to switch protocols (`Connection: upgrade` with `Upgrade: websocket` or `h2c`, as `curl --http2` sends over plain HTTP). Rampart does not proxy WebSocket or cleartext HTTP/2: send the request without these headers (over HTTPS, HTTP/2 is negotiated by ALPN when `server.tls.http2` is on). Nothing was forwarded.',
  },
  RMP_VERSION_UNKNOWN: {
    status: 400,
    title: 'Unknown API version',
    doc: 'The request names a version (in the header, `Accept` parameter or query parameter its path selects versions by) that this path does not serve, or names it twice in the query. `versions` in the body lists the values it does. Nothing was forwarded.',
  },
  RMP_VERSION_REQUIRED: {
    status: 400,
    title: 'API version required',
    doc: 'Several versions share this path, none of them is the default, and the request names none: send the header, `Accept` parameter or query parameter `detail` names, with one of the values in `versions`. Nothing was forwarded.',
  },
  RMP_VERSION_RETIRED: {
    status: 410,
    title: 'API version retired',
    doc: 'The route belongs to a version whose sunset has passed. `Sunset` gives the date, and `Link: <…>; rel="successor-version"` (also `successor` in the body), when there is one, where to go instead. Nothing was forwarded.',
  },
  RMP_AUTH_REQUIRED: {
    status: 401,
    title: 'Authentication required',
    doc: 'The route needs credentials and the request has none. `WWW-Authenticate` names the scheme (`Bearer realm="…"`). Nothing was forwarded.',
  },
  RMP_AUTH_INVALID_REQUEST: {
    status: 401,
    title: 'Malformed credentials',
    doc: 'The credentials are not in the form the route takes: an `Authorization` header that is not exactly `Bearer <token>`, several of them, or a token in the query string (`access_token`), which is refused because URLs end up in logs and browser history. `WWW-Authenticate: Bearer …, error="invalid_request"`. Nothing was forwarded.',
  },
  RMP_AUTH_TOKEN_INVALID: {
    status: 401,
    title: 'Invalid token',
    doc: 'The token is not one the route accepts: bad signature, an algorithm not in the allowlist, an unknown key, a wrong issuer, audience or type, a `nbf` in the future, a forbidden header (`jku`, `jwk`, `x5u`, `x5c`, unknown `crit`). `WWW-Authenticate: Bearer …, error="invalid_token", error_description="…"`. Nothing was forwarded.',
  },
  RMP_AUTH_TOKEN_EXPIRED: {
    status: 401,
    title: 'Token expired',
    doc: 'The token\'s `exp` has passed (beyond the allowed clock skew). `WWW-Authenticate: Bearer …, error="invalid_token"`. Get a new token. Nothing was forwarded.',
  },
  RMP_AUTH_TOKEN_REVOKED: {
    status: 401,
    title: 'Token revoked',
    doc: 'The token was revoked (its `jti`, or every token of its subject issued before a time). `WWW-Authenticate: Bearer …, error="invalid_token"`. Nothing was forwarded.',
  },
  RMP_AUTH_UNAVAILABLE: {
    status: 503,
    title: 'Authentication unavailable',
    doc: 'The keys to check the token cannot be had (the issuer\'s JWKS is unreachable and no copy recent enough is kept). Fails closed; `Retry-After` says when to try again. Nothing was forwarded.',
  },
  RMP_AUTHZ_DENIED: {
    status: 403,
    title: 'Forbidden',
    doc: 'The caller is known but may not do this: a required scope or role is missing, or no `authorize` rule allows the request (default deny). An `authz_fail` event is recorded. Nothing was forwarded.',
  },
  RMP_OBJECT_NOT_FOUND: {
    status: 404,
    title: 'Not found',
    doc: 'An `authorize` response rule refused the upstream\'s answer (the object belongs to someone else): the client gets a 404, as for an object that does not exist, and none of the body. An `authz_fail` event is recorded.',
  },
  RMP_RESPONSE_CHECK_FAILED: {
    status: 502,
    title: 'Response could not be checked',
    doc: 'The route has `authorize` response rules and the upstream\'s answer is not a 2xx with a JSON body: it is not sent (fail closed). (A 204 or 205 to a write, DELETE say, is sent: it carries nothing to check.) An answer larger than the route\'s response bound (`limits.response.buffer`, 1 MiB) is `RMP_RESPONSE_TOO_LARGE` instead.',
  },
  RMP_RESPONSE_TOO_LARGE: {
    status: 502,
    title: 'Response too large to filter',
    doc: 'The route filters or checks upstream answers (`redact`, `detect`, `authorize` response rules, allowlists) and this one is larger than `limits.response.buffer` (1 MiB by default), counted after decompression; `limits.response.oversize` is `refuse` (the default), or the route has response rules, which are never skipped. Decided from `Content-Length` before any of the body is read, or as it streams. Nothing of the answer was sent. Raise the bound, or set `oversize: stream` to send such answers unfiltered (each one records a `response_unfiltered` event).',
  },
  RMP_RESPONSE_INVALID: {
    status: 502,
    title: 'Upstream response not valid',
    doc: 'The route filters upstream answers and this one could not be filtered: it says it is JSON (`application/json`, `application/*+json`) but does not parse, it is JSON (labelled or not) with a `__proto__` or `constructor.prototype` key, or it is compressed with an encoding other than gzip, deflate or br (or corrupt). Nothing of the answer was sent; the upstream should be fixed.',
  },
  RMP_UPSTREAM_CLIENT_ERROR: {
    status: 400,
    title: 'Request refused by the upstream',
    doc: 'The route has `upstream-errors: { clientErrors: replace }` and the upstream refused the request with a 4xx: the client gets that status (400 here stands for any 4xx) with this problem instead of the upstream\'s body and headers, which are logged. A `Retry-After` of a 429 is kept.',
  },
  RMP_UPSTREAM_ERROR: {
    status: 502,
    title: 'Upstream error',
    doc: 'The upstream answered with a server error (5xx), or with a client error on a route with `upstream-errors: { clientErrors: replace }`. None of its body or headers reached the client (no stack traces, SQL errors or internal addresses); its status and the start of its body are in the gateway\'s log with the request id. A `Retry-After` of a 503 or 429 is kept. See the `upstream-errors` policy.',
  },
  RMP_PASSWORD_TOO_SHORT: {
    status: 400,
    title: 'Password too short',
    doc: 'The new password has fewer characters than the configured minimum (12 by default; at least 8). No composition rules apply: length is what counts.',
  },
  RMP_PASSWORD_TOO_LONG: {
    status: 400,
    title: 'Password too long',
    doc: 'The password is longer than 256 characters or 1 KiB of UTF-8 (a cap against hashing denial of service). Passwords are never truncated.',
  },
  RMP_PASSWORD_COMMON: {
    status: 400,
    title: 'Password too common',
    doc: 'The new password is in the list of common passwords (49 233 entries, @zxcvbn-ts/language-common). Choose a longer, less guessable one; a passphrase works well.',
  },
  RMP_PASSWORD_CONTAINS_IDENTITY: {
    status: 400,
    title: 'Password contains your name',
    doc: 'The new password contains the name part of your e-mail address or the product name.',
  },
  RMP_VALIDATION_FAILED: {
    status: 400,
    title: 'The request is not valid',
    doc: 'The request does not match what the endpoint takes. `errors` lists each problem as `{ pointer, detail }`; the detail says what is expected and never quotes the value sent. On routes validated against an OpenAPI document (the `openapi` policy) the pointer names the part of the request: `/path/petId`, `/query/limit`, `/header/x-trace-id`, `/cookie/session`, or `/body` and a JSON pointer into it (`/body/tags/0`). The built-in identity endpoints, which take JSON bodies only, point into the body directly (`/email`) or at `/query/<name>`. Properties that are not accepted — undeclared (mass assignment: `role`, `isAdmin`) or read-only (`id`) — are refused and named. Nothing was forwarded.',
  },
  RMP_LOGIN_FAILED: {
    status: 401,
    title: 'Login failed',
    doc: 'The e-mail and password do not match an account that may log in. The answer is the same, byte for byte, whether the account does not exist, the password is wrong, or the account is locked or disabled, so it tells nothing about which. Repeated failures lock the account for a while (see docs/identity.md).',
  },
  RMP_REFRESH_TOKEN_INVALID: {
    status: 401,
    title: 'Refresh token not accepted',
    doc: 'The refresh token is unknown, expired, revoked, or was already used. Reusing a spent refresh token ends the whole login session (every token of the family): log in again.',
  },
  RMP_PASSWORD_CHANGE_REQUIRED: {
    status: 403,
    title: 'Password change required',
    doc: 'The account has a one-time password. Login answered with a `passwordChangeToken`, which can only be used at `POST /api/v1/auth/password` to set a new password.',
  },
  RMP_PASSWORD_INCORRECT: {
    status: 403,
    title: 'Current password is incorrect',
    doc: 'Changing a password needs the current one, and the one given does not match.',
  },
  RMP_MFA_REQUIRED: {
    status: 403,
    title: 'Second factor required',
    doc: 'The password was right and the account has TOTP on. Login answered with an `mfaToken` (5 minutes, single use), to send with a code from the authenticator app, or a recovery code, to `POST /api/v1/auth/mfa`. No session has started yet.',
  },
  RMP_MFA_ENROLMENT_REQUIRED: {
    status: 403,
    title: 'Second factor enrolment required',
    doc: 'The password was right, a role of the account is in `identity.mfa.requireForRoles`, and the account has no TOTP yet. Login answered with an `mfaToken` that only sets TOTP up: `POST /api/v1/auth/mfa-enrol`, then `POST /api/v1/auth/mfa-enrol-confirm` with a first code, which starts the session.',
  },
  RMP_MFA_CODE_INVALID: {
    status: 401,
    title: 'Code not accepted',
    doc: 'The TOTP code is wrong, was already used (each code, and each 30-second step, is accepted once), or is a recovery code that is unknown or used, or the second factor is locked after too many wrong codes: the answer is the same for all. Wait for the next code; after `identity.mfa.lockout.threshold` wrong codes in a row the second factor is locked for a while (see docs/identity.md).',
  },
  RMP_MFA_ALREADY_ENABLED: {
    status: 409,
    title: 'Second factor already on',
    doc: 'TOTP is already on for this account. To move to a new device, disable it (password and a code) and enrol again, or ask an admin to reset it.',
  },
  RMP_MFA_NOT_ENROLLED: {
    status: 409,
    title: 'No second factor to use',
    doc: 'Confirming needs a pending enrolment (start with `POST /api/v1/users/{id}/mfa/enrol`); disabling TOTP and new recovery codes need TOTP on.',
  },
  RMP_CSRF_FAILED: {
    status: 403,
    title: 'CSRF check failed',
    doc: 'In browser mode (`identity.browser.refreshCookie`), a refresh with the cookie needs the `X-CSRF-Token` header equal to the `__Host-rampart-csrf` cookie, and an `Origin` (when the browser sends one) of the issuer or `identity.browser.origins`. A page on another site cannot read the cookie, so it cannot send the header.',
  },
  RMP_REGISTRATION_CLOSED: {
    status: 403,
    title: 'Registration is closed',
    doc: '`identity.registration` is `off`, or it is `invite` and no valid invitation was given (unknown, used, expired, or for another e-mail).',
  },
  RMP_USER_EXISTS: {
    status: 409,
    title: 'A user with this e-mail exists',
    doc: 'An admin tried to create (or rename to) an e-mail that is taken. Open registration never answers this (it answers 202 either way).',
  },
  RMP_LAST_ADMIN: {
    status: 409,
    title: 'The last admin cannot go',
    doc: 'Deleting, disabling or removing the admin role from the only active admin would leave nobody able to manage users. Make another admin first (or `rampart users create --admin`).',
  },
  RMP_SCOPE_EXCEEDED: {
    status: 403,
    title: 'Scope beyond the caller\'s',
    doc: 'An API key or OAuth client was asked for scopes its creator (or, for a key, its owner) does not have. A credential can never grant more than the principal who made it; `scopes` lists the ones refused. Nothing was created.',
  },
  RMP_API_KEY_LIMIT: {
    status: 409,
    title: 'Too many API keys',
    doc: 'The user already holds the most live API keys allowed (`identity.apiKeys.maxPerUser`). Revoke one (`DELETE /api/v1/api-keys/{id}`) first.',
  },
  RMP_CLIENT_EXISTS: {
    status: 409,
    title: 'A client with this id exists',
    doc: 'An admin registered an OAuth client under an id that is taken. Pick another `id`, or leave it out for a generated one.',
  },
  RMP_STORE_UNAVAILABLE: {
    status: 503,
    title: 'The identity store is unavailable',
    doc: 'The database of the identity service cannot be reached; the request changed nothing. Retry after `Retry-After`. Proxying of routes that do not need it continues.',
  },
  RMP_RATE_LIMITED: {
    status: 429,
    title: 'Too many requests',
    doc: 'A rate limit of the route (or the default per-IP limit) is used up. `Retry-After` says in how many seconds to try again; `RateLimit-Policy` and `RateLimit` describe the limit and what is left. Nothing was forwarded.',
  },
  RMP_RATE_LIMIT_UNAVAILABLE: {
    status: 503,
    title: 'Rate limiter unavailable',
    doc: 'The rate-limit store (Redis) cannot be reached and the limit is set to `onStoreFailure: closed`, so the request is refused rather than let through uncounted. `Retry-After: 1`. Nothing was forwarded.',
  },
  RMP_OVERLOADED: {
    status: 503,
    title: 'Overloaded',
    doc: 'Shed at once instead of queued: the route\'s or upstream\'s concurrency limit is reached, or the process is under pressure (event-loop delay, memory; `server.overload`). `Retry-After` says when to try again. Nothing was forwarded.',
  },
  RMP_HTTPS_REDIRECT: {
    status: 308,
    title: 'Use HTTPS',
    doc: 'The route is served over HTTPS only and the request came over plain HTTP: `Location` has the same path and query on `https://` (308 keeps the method and body). Nothing was forwarded. See `server.insecureRequests`; a route can opt out with `allowInsecure: true`.',
  },
  RMP_HTTPS_REQUIRED: {
    status: 403,
    title: 'HTTPS required',
    doc: 'The route is served over HTTPS only and the request came over plain HTTP (`server.insecureRequests.action: forbid`, or a redirect was due but the request had no `Host`). Nothing was forwarded.',
  },
  RMP_HTTPS_UPGRADE_REQUIRED: {
    status: 426,
    title: 'Upgrade to HTTPS required',
    doc: 'The route is served over HTTPS only and the request came over plain HTTP (`server.insecureRequests.action: upgrade-required`); the answer carries `Upgrade: TLS/1.2, HTTP/1.1`. Nothing was forwarded.',
  },
  RMP_REQUEST_HEADERS_TOO_LARGE: {
    status: 431,
    title: 'Request headers too large',
    doc: 'The request headers are larger than the HTTP parser accepts (16 KiB), or more numerous than the `limits.headers` setting.',
  },
  RMP_URL_TOO_LONG: {
    status: 414,
    title: 'Request target too long',
    doc: 'The path and query are longer than the `limits.url` setting.',
  },
  RMP_RESPONSE_UNDECLARED: {
    status: 502,
    title: 'The upstream\'s answer is not in the API description',
    doc: 'The upstream answered with a status or JSON media type its OpenAPI document does not declare for the operation, and the route allowlists answers by that document (`openapi.response.undeclared: refuse`): nothing of the answer is sent. Declare the response, or set `undeclared: pass`.',
  },
  RMP_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    title: 'Unsupported media type',
    doc: 'The request has a body whose `Content-Type` is missing, malformed or not in the route\'s `limits.contentTypes` list, or not one its OpenAPI operation declares (`openapi` policy; `detail` lists those). XML is refused unless a route lists it.',
  },
  RMP_JSON_INVALID: {
    status: 400,
    title: 'Invalid JSON',
    doc: 'The request declares a JSON body that does not parse.',
  },
  RMP_JSON_FORBIDDEN_KEY: {
    status: 400,
    title: 'Forbidden JSON key',
    doc: 'The JSON body has a `__proto__` or `constructor.prototype` key: a prototype-pollution attempt on upstreams that merge request bodies into objects.',
  },
  RMP_JSON_DUPLICATE_KEY: {
    status: 400,
    title: 'Duplicate JSON key',
    doc: 'An object in the JSON body has the same key twice (compared after unescaping, so `"a"` and `"\\u0061"` are one key). Parsers disagree on which of the two values counts: the gateway would check one and the upstream could act on the other, so such a body is refused (RFC 8259 §4, I-JSON RFC 7493). Nothing was forwarded.',
  },
  RMP_JSON_LIMIT_EXCEEDED: {
    status: 400,
    title: 'JSON body too complex',
    doc: 'The JSON body is nested deeper, or has more keys in one object or items in one array, than the `limits.json` settings allow.',
  },
  RMP_XML_FORBIDDEN: {
    status: 400,
    title: 'Forbidden XML construct',
    doc: 'The XML body has a DOCTYPE or other DTD declaration (any `<!` that does not open a comment or CDATA section, in any case), or mentions the XInclude namespace. This is what rules out external entities (XXE) and entity expansion (billion laughs). The search is over the raw text, so the same strings inside a comment or CDATA section are refused too.',
  },
  RMP_XML_INVALID: {
    status: 400,
    title: 'Invalid XML',
    doc: 'The XML body is not UTF-8 (UTF-16 and UTF-32 are refused, with or without a byte-order mark), holds a NUL or control character, does not start with `<` (after an optional UTF-8 byte-order mark and whitespace), declares an encoding other than UTF-8 or US-ASCII, or is not well-formed. A `charset` other than utf-8 or us-ascii on the `Content-Type` is answered 415 `RMP_UNSUPPORTED_MEDIA_TYPE` instead.',
  },
  RMP_XML_LIMIT_EXCEEDED: {
    status: 400,
    title: 'XML body too complex',
    doc: 'The XML body nests elements deeper than the `limits.xml.depth` setting allows.',
  },
  RMP_INPUT_REJECTED: {
    status: 400,
    title: 'Input refused by inspection',
    doc: 'The `inspect` policy found an injection payload in a string input: a NoSQL query operator (`$ne`, `$where`, …) as a JSON key or in a query or form parameter name, a NUL character, a CR or LF in a query or path value or in a body field the route marks as header-bound, or path traversal in a path parameter (a dot segment, a NUL, an overlong UTF-8 form or a separator, decoded once or twice). `errors` lists each problem as `{ pointer, detail }` (`/body/<json pointer>`, `/query/<name>`, `/path/<param>`, `/header/<name>`, at most 10); the value itself is never echoed. An `input_validation_fail` event is recorded. Nothing was forwarded. Each rule can be switched off per route (see the policy\'s README for their false positives).',
  },
  RMP_BODY_TOO_LARGE: {
    status: 413,
    title: 'Request body too large',
    doc: 'The request body is larger than the `limits.body` setting. A declared `Content-Length` over the limit is refused before the body is read and the upstream is never called; a chunked body is cut off when it passes the limit.',
  },
  RMP_REQUEST_TIMEOUT: {
    status: 408,
    title: 'Request timeout',
    doc: 'The client did not send the whole request within the listener\'s request timeout.',
  },
  RMP_IP_DENIED: {
    status: 403,
    title: 'Client address refused',
    doc: 'The client address (after the trusted-proxy rules) is on the route\'s `ip-filter` deny list, or not on its allow list.',
  },
  RMP_CORS_PREFLIGHT_REJECTED: {
    status: 403,
    title: 'CORS preflight rejected',
    doc: 'A CORS preflight came from an origin, or asked for a method or headers, that the route\'s `cors` policy does not allow. The answer carries no CORS headers, so the browser does not send the actual request.',
  },
  RMP_UPSTREAM_TIMEOUT: {
    status: 504,
    title: 'Upstream timeout',
    doc: 'The upstream did not accept the connection or answer with headers within the configured `connect` or `headers` timeout. The upstream\'s identity and its error are logged, never sent to the client.',
  },
  RMP_UPSTREAM_UNAVAILABLE: {
    status: 502,
    title: 'Upstream unavailable',
    doc: 'The upstream refused or reset the connection, or sent a response Rampart could not read. Retries (idempotent methods without a body only) were exhausted.',
  },
  RMP_UPSTREAM_CIRCUIT_OPEN: {
    status: 503,
    title: 'Upstream circuit open',
    doc: 'Every target of the route\'s upstream failed `passiveHealth.failures` times in a row (refused, reset, timed out), so it is not tried for `passiveHealth.cooldown`: the answer comes at once, with `Retry-After` until the next probe. After the cooldown one request is let through; its success closes the circuit. Nothing was sent upstream.',
  },
  RMP_TOO_MANY_CONNECTIONS: {
    status: 429,
    title: 'Too many connections',
    doc: 'The client address already holds `server.maxConnectionsPerIp` open connections. The new connection is answered and closed; reuse keep-alive connections instead of opening more.',
  },
  RMP_SHUTTING_DOWN: {
    status: 503,
    title: 'Shutting down',
    doc: 'The gateway is draining before it exits and does not take new requests. Retry against another node.',
  },
  RMP_ADMIN_AUTH_REQUIRED: {
    status: 401,
    title: 'Admin authentication required',
    doc: 'The admin API needs the admin token (`Authorization: Bearer …`, from `admin.token`) or a console session (log in at `POST /api/session`). Sent with `WWW-Authenticate: Bearer realm="rampart-admin"`.',
  },
  RMP_ADMIN_AUTH_INVALID: {
    status: 401,
    title: 'Admin credentials not accepted',
    doc: 'The admin token is wrong, the console session is unknown, expired or logged out, or the e-mail and password at the console\'s login are not right. Log in again.',
  },
  RMP_ADMIN_FORBIDDEN: {
    status: 403,
    title: 'Not an administrator',
    doc: 'The credentials are right but the account does not have the role `admin.role` (default `admin`). The attempt is a security event.',
  },
  RMP_ADMIN_CSRF: {
    status: 403,
    title: 'CSRF token missing or wrong',
    doc: 'A change through a console session (POST, PUT, PATCH, DELETE with the session cookie) must carry the session\'s `X-CSRF-Token` header (returned at login and by `GET /api/session`). Scripts use the admin token instead, which needs none.',
  },
  RMP_ADMIN_IDENTITY_DISABLED: {
    status: 404,
    title: 'No identity service',
    doc: 'Users, API keys and OAuth clients are managed by the identity service, which this gateway does not run (`identity.enabled`).',
  },
  RMP_ADMIN_NOT_FOUND: {
    status: 404,
    title: 'No such object',
    doc: 'The event, user, API key or client named in the admin API path does not exist (or no longer does).',
  },
  RMP_ADMIN_HOST_REFUSED: {
    status: 421,
    title: 'Not addressed to this admin listener',
    doc: 'The admin listener serves plain HTTP on loopback only, and answers only requests whose Host is `localhost`, a loopback address or its own address: a web page cannot reach it through a DNS name that points at 127.0.0.1 (DNS rebinding).',
  },
  RMP_ADMIN_BAD_REQUEST: {
    status: 400,
    title: 'Invalid admin request',
    doc: 'A query parameter or body field of an admin API call is not valid; `errors` says which.',
  },
  RMP_ADMIN_CONSOLE_NOT_BUILT: {
    status: 503,
    title: 'Console not built',
    doc: 'The admin listener serves the console from `dist/console`, which is missing: the package was installed without running its build. Run `npm run build:console` (or `npm run build`) and restart; the admin API and the gateway work without it.',
  },
  RMP_INTERNAL: {
    status: 500,
    title: 'Internal error',
    doc: 'An unexpected error. The cause is logged with the request id; nothing about it is sent to the client.',
  },
} as const satisfies Record<string, { status: number; title: string; doc: string }>;

export type ErrorCode = keyof typeof errorCodes;
