import type { Generated } from 'kysely';

/** Tables, as Kysely sees them (one interface per table; columns in snake_case as stored). */
export interface Database {
  audit_events: AuditEventTable;
  users: UserTable;
  refresh_tokens: RefreshTokenTable;
  signing_keys: SigningKeyTable;
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
}
