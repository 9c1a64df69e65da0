import type { Generated } from 'kysely';

/** Tables, as Kysely sees them (one interface per table; columns in snake_case as stored). */
export interface Database {
  audit_events: AuditEventTable;
  users: UserTable;
  refresh_tokens: RefreshTokenTable;
  signing_keys: SigningKeyTable;
  refresh_families: RefreshFamilyTable;
  invites: InviteTable;
  revoked_tokens: RevokedTokenTable;
  access_tokens: AccessTokenTable;
  secret_keys: SecretKeyTable;
  api_keys: ApiKeyTable;
  oauth_clients: OAuthClientTable;
  client_secrets: ClientSecretTable;
  user_mfa: UserMfaTable;
  recovery_codes: RecoveryCodeTable;
  revoked_subjects: RevokedSubjectTable;
}

/** Every token of `subject` issued before `not_before` is refused (until `expires_at`, when none can be alive). */
export interface RevokedSubjectTable {
  subject: string;
  not_before: string;
  expires_at: string;
}

/**
 * Server keys derived from the master key when first needed (HKDF, one per purpose and version:
 * token hashing, API-key and client-secret peppers) and kept encrypted under it, so rotating the
 * master key re-encrypts them rather than voiding every credential hashed with them.
 */
export interface SecretKeyTable {
  purpose: string;
  version: number;
  value_encrypted: string;
  created_at: string;
}

/** An API key: only its HMAC-SHA-256 under a versioned pepper is stored, with a displayable prefix. */
export interface ApiKeyTable {
  id: string;
  /** The owner: the key acts as this user, with at most their scopes. */
  user_id: string;
  name: string;
  /** The first characters of the key (`rmp_live_AbCd1234`), to recognise it in a list. */
  prefix: string;
  key_hash: string;
  pepper_version: number;
  /** JSON list. */
  scopes: Generated<string>;
  /** Who made it: a user id, or `cli`. */
  created_by: string;
  created_at: string;
  expires_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** An OAuth 2.0 confidential client (client credentials grant). */
export interface OAuthClientTable {
  id: string;
  name: string;
  /** JSON list: the scope ceiling; a token never carries a scope outside it. */
  scopes: Generated<string>;
  auth_method: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';
  /** JSON Web Key Set of the client's public keys (private_key_jwt). */
  jwks: string | null;
  /** 1 when the client may introspect any token of this server (a resource server). */
  introspection: Generated<number>;
  /** Access-token lifetime in seconds (null: the identity service's). */
  token_ttl: number | null;
  created_by: string;
  created_at: string;
  updated_at: string;
  disabled_at: string | null;
}

/** A client secret (HMAC under a versioned pepper); during a rotation the old one lives until `expires_at`. */
export interface ClientSecretTable {
  id: string;
  client_id: string;
  prefix: string;
  secret_hash: string;
  pepper_version: number;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
}

/** A TOTP enrolment: the secret encrypted under the master key; pending until the first code is verified. */
export interface UserMfaTable {
  user_id: string;
  secret_encrypted: string;
  created_at: string;
  enabled_at: string | null;
  /** The last time step accepted: a code is used once (a step at or before it is refused). */
  last_step: Generated<number>;
  /** Consecutive failed codes (separate from the password's count). */
  failed: Generated<number>;
  locked_until: string | null;
}

/** A single-use recovery code (hashed). */
export interface RecoveryCodeTable {
  id: string;
  user_id: string;
  code_hash: string;
  created_at: string;
  used_at: string | null;
}

/** An access token issued (its `jti`), so revoking its session can denylist it until it expires. */
export interface AccessTokenTable {
  jti: string;
  family_id: string;
  user_id: string;
  expires_at: string;
}

export interface UserTable {
  id: string;
  /** Lowercased; unique. */
  email: string;
  /** Argon2id, parameters included. */
  password_hash: string;
  /** JSON list of role names. */
  roles: Generated<string>;
  created_at: string;
  updated_at: string;
  disabled_at: string | null;
  failed_logins: Generated<number>;
  locked_until: string | null;
  /** Access tokens issued before this time are refused (logout everywhere, password change). */
  tokens_not_before: string | null;
  /** 1 when the password is a one-time password that must be changed before anything else. */
  password_change_required: Generated<number>;
}

/** A login session: every refresh token of one rotation chain; revoked as a whole. */
export interface RefreshFamilyTable {
  id: string;
  user_id: string;
  client_id: string;
  created_at: string;
  /** Absolute expiry: no refresh past it, however active the session. */
  expires_at: string;
  last_used_at: string;
  revoked_at: string | null;
  revoked_reason: string | null;
  client_ip: string | null;
  user_agent: string | null;
  /** How the session was authenticated (JSON list of RFC 8176 `amr` values), null for `["pwd"]`. */
  amr: string | null;
}

/** A single-use invitation to register (`registration: invite`); only its hash is stored. */
export interface InviteTable {
  id: string;
  token_hash: string;
  email: string | null;
  roles: Generated<string>;
  created_by: string | null;
  created_at: string;
  expires_at: string;
  used_at: string | null;
  used_by: string | null;
}

/** Access tokens revoked before their expiry (logout), replayed into the revocation store at start. */
export interface RevokedTokenTable {
  jti: string;
  expires_at: string;
}

/** One refresh token of a rotation family; only its hash is stored. */
export interface RefreshTokenTable {
  id: string;
  family_id: string;
  user_id: string;
  token_hash: string;
  issued_at: string;
  expires_at: string;
  used_at: string | null;
  revoked_at: string | null;
  /** The token this one replaced (null for the first of a family). */
  parent_id: string | null;
}

export interface SigningKeyTable {
  kid: string;
  alg: string;
  public_jwk: string;
  /** The private JWK, encrypted under the master key. */
  private_jwk_encrypted: string;
  created_at: string;
  active_from: string;
  retired_at: string | null;
  /** Emergency revocation: the key is withdrawn from JWKS and its tokens refused. */
  revoked_at: string | null;
}

/** The events module's database sink (one row per security event), kept for `retention`. */
export interface AuditEventTable {
  id: Generated<number>;
  /** ISO-8601 time of the event. */
  time: string;
  /** OWASP vocabulary with args, e.g. `authz_fail:bob`. */
  event: string;
  level: string;
  description: string;
  request_id: string | null;
  client_ip: string | null;
  route: string | null;
  /** JSON of the event's data (never secrets). */
  data: string | null;
  /** The event type without its args (`authn_login_fail`). */
  type: string | null;
  /** Who acted (a user id, `client:<id>`, `system`); never an e-mail. */
  actor: string | null;
  /** Whom or what it was about (a user id, a key id). */
  subject: string | null;
}
