import { randomUUID } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, errors, importJWK, jwtVerify, type JSONWebKeySet, type JWK } from 'jose';
import { PostgresAdapter, type Kysely, type Selectable } from 'kysely';
import { RampartError } from '../errors/problem.js';
import type { SecurityEvent } from '../observability/events.js';
import type { Revocation } from '../revocation/revocation.js';
import type { ClientSecretTable, Database, OAuthClientTable } from '../storage/schema.js';
import { credentialHash, isCredential, newCredential, shownPrefix, type CredentialEnvironment } from './credentials.js';
import { isUniqueViolation, iso, numInserted, parseList } from './rows.js';
import type { SecretKeys } from './secret-keys.js';
import type { ClientInfo } from './service.js';
import { TokenHasher, type AccessTokens } from './tokens.js';

export type ClientAuthMethod = OAuthClientTable['auth_method'];
export const CLIENT_AUTH_METHODS: readonly ClientAuthMethod[] = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'];
/** What `private_key_jwt` assertions may be signed with (RFC 7523; never HMAC, never none). */
export const ASSERTION_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;
/** RFC 7523 §2.2. */
export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** An assertion may live at most this long (it is single use; a long one is a stolen one). */
const MAX_ASSERTION_S = 300;
/** A client's rotated-out secret may overlap with the new one at most this long. */
export const MAX_SECRET_OVERLAP_MS = 30 * 86_400_000;
const CLIENT_ID = /^[a-z0-9][a-z0-9._-]{2,63}$/;
/** The largest clock skew a jwt policy allows (seconds): cut-offs and denylisting outlive tokens by it. */
const CUTOFF_SKEW_S = 300;
const SCOPE = /^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/;

/**
 * An OAuth error (RFC 6749 §5.2): `error` code, description, HTTP status. The OAuth endpoints
 * render these (and any other refusal) as `{"error": …, "error_description": …}`.
 */
export class OAuthError extends Error {
  readonly status: number;
  readonly error: string;
  readonly description: string;
  readonly headers: Record<string, string> | undefined;

  constructor(status: number, error: string, description: string, headers?: Record<string, string>) {
    super(description);
    this.name = 'OAuthError';
    this.status = status;
    this.error = error;
    this.description = description;
    this.headers = headers;
  }
}

/** RFC 6749 §5.2: a failed client authentication is 401 with a challenge for the scheme the client may use. */
export const invalidClient = (description = 'Client authentication failed.') => new OAuthError(401, 'invalid_client', description, { 'www-authenticate': 'Basic realm="rampart", charset="UTF-8"' });

/** How a request authenticated its client (or named a public one). */
export type PresentedClient =
  | { method: 'client_secret_basic' | 'client_secret_post'; id: string; secret: string }
  | { method: 'private_key_jwt'; id: string | undefined; assertion: string }
  | { method: 'none'; id: string };

export interface ClientSettings {
  env: CredentialEnvironment;
  /** The first-party client (`identity.clientId`): never a registered client's id. */
  firstPartyId: string;
  defaultTokenTtlS: number;
  maxTokenTtlS: number;
  defaultOverlapMs: number;
}

export interface ClientSecretDto {
  id: string;
  prefix: string;
  createdAt: string;
  expiresAt: string | null;
  status: 'active' | 'expiring' | 'expired' | 'revoked';
}

/** A client as admins see it: never a secret or its hash. */
export interface ClientDto {
  id: string;
  name: string;
  scopes: string[];
  authMethod: ClientAuthMethod;
  /** May introspect any token of this server (a resource server); otherwise only its own. */
  introspection: boolean;
  /** Access-token lifetime in seconds (null: the service's default). */
  tokenTtl: number | null;
  jwks: JWK[] | null;
  status: 'active' | 'disabled';
  createdAt: string;
  updatedAt: string;
  createdBy: string;
  secrets: ClientSecretDto[];
}

export interface ClientInput {
  id?: string | undefined;
  name: string;
  scopes: readonly string[];
  authMethod?: ClientAuthMethod | undefined;
  jwks?: JSONWebKeySet | undefined;
  introspection?: boolean | undefined;
  tokenTtlS?: number | undefined;
}

export interface ClientPatch {
  name?: string | undefined;
  scopes?: readonly string[] | undefined;
  status?: 'active' | 'disabled' | undefined;
  introspection?: boolean | undefined;
  jwks?: JSONWebKeySet | undefined;
  tokenTtlS?: number | null | undefined;
}

/** A registered client as the token endpoint sees it. */
export interface AuthenticatedClient {
  id: string;
  scopes: readonly string[];
  introspection: boolean;
  tokenTtlS: number;
  /** The secret it authenticated with (none for private_key_jwt). */
  secretId: string | undefined;
  /** When the client row and its credential were read (ms). */
  checkedAt: number;
}

type ClientRow = Selectable<OAuthClientTable>;
type SecretRow = Selectable<ClientSecretTable>;
type Emit = (event: SecurityEvent, client: ClientInfo) => void;


/**
 * OAuth 2.0 confidential clients (RFC 6749 §2.1) for the client credentials grant: registered by
 * admins, each with a scope ceiling and one way to authenticate — a secret (`rmpcs_<env>_…`, only
 * its HMAC stored, rotated with an overlap window) or a key pair (`private_key_jwt`, RFC 7523,
 * single-use assertions). Their tokens have `sub: client:<id>`, so no client is ever taken for a
 * user; disabling or deleting a client revokes every token it holds.
 */
export class OAuthClients {
  readonly #db: Kysely<Database>;
  readonly #secrets: SecretKeys;
  readonly #tokens: AccessTokens;
  readonly #revocation: Revocation;
  readonly #emit: Emit;
  readonly #auditId: (value: string) => string;
  readonly settings: ClientSettings;
  #pepperRefreshedAt = 0;
  /** The newest cut-off this node has applied (`syncCutOffs`). */
  #cutOffsSeen: string | undefined;

  constructor(parts: { db: Kysely<Database>; secrets: SecretKeys; tokens: AccessTokens; revocation: Revocation; emit: Emit; auditId: (value: string) => string; settings: ClientSettings }) {
    this.#auditId = parts.auditId;
    this.#db = parts.db;
    this.#secrets = parts.secrets;
    this.#tokens = parts.tokens;
    this.#revocation = parts.revocation;
    this.#emit = parts.emit;
    this.settings = parts.settings;
  }

  // ── management (admins, the CLI) ─────────────────────────────────────────────────────────

  /**
   * Registers a client. `ceiling` is what its creator may give (an admin's own scopes; undefined
   * for the operator's CLI): a scope beyond it is refused (403 RMP_SCOPE_EXCEEDED). A secret
   * client gets its first secret, shown once; a `private_key_jwt` client gives its public keys.
   */
  async create(actorId: string, ceiling: ReadonlySet<string> | undefined, input: ClientInput, client: ClientInfo): Promise<{ client: ClientDto; secret?: string }> {
    const method = input.authMethod ?? 'client_secret_basic';
    const id = input.id ?? `cl_${randomUUID().replace(/-/g, '').slice(0, 20)}`;
    if (!CLIENT_ID.test(id)) throw invalidField('/id', 'must be 3 to 64 of a-z, 0-9, ".", "_" or "-", starting with a letter or digit');
    if (id === this.settings.firstPartyId) throw invalidField('/id', `is the first-party client's id (identity.clientId)`);
    const scopes = this.#checkScopes(actorId, ceiling, input.scopes, client);
    const jwks = method === 'private_key_jwt' ? await checkJwks(input.jwks) : undefined;
    if (method !== 'private_key_jwt' && input.jwks !== undefined) throw invalidField('/jwks', 'is only for authMethod private_key_jwt');
    const ttl = this.#checkTtl(input.tokenTtlS);
    const now = Date.now();
    const secret = method === 'private_key_jwt' ? undefined : newCredential('clientSecret', this.settings.env);
    try {
      await this.#db.transaction().execute(async (trx) => {
        await trx
          .insertInto('oauth_clients')
          .values({ id, name: input.name, scopes: JSON.stringify(scopes), auth_method: method, jwks: jwks === undefined ? null : JSON.stringify(jwks), introspection: input.introspection === true ? 1 : 0, token_ttl: ttl ?? null, created_by: actorId, created_at: iso(now), updated_at: iso(now), disabled_at: null })
          .execute();
        if (secret !== undefined) await trx.insertInto('client_secrets').values(this.#secretRow(id, secret, now)).execute();
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw new RampartError('RMP_CLIENT_EXISTS');
      throw error;
    }
    this.#emit({ type: 'client_created', level: 'INFO', description: `OAuth client registered (${method})`, args: [id], actor: actorId, subject: `client:${id}`, data: { scopes: scopes.join(' '), authMethod: method } }, client);
    const dto = (await this.get(id))!;
    return secret === undefined ? { client: dto } : { client: dto, secret };
  }

  async get(id: string): Promise<ClientDto | undefined> {
    const row = await this.#db.selectFrom('oauth_clients').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) return undefined;
    const secrets = await this.#db.selectFrom('client_secrets').selectAll().where('client_id', '=', id).orderBy('created_at', 'asc').execute();
    return toDto(row, secrets, Date.now());
  }

  async list(query: { limit: number; after?: string | undefined }): Promise<{ items: ClientDto[]; nextCursor: string | null }> {
    let q = this.#db.selectFrom('oauth_clients').selectAll().orderBy('id', 'asc').limit(query.limit + 1);
    if (query.after !== undefined) q = q.where('id', '>', query.after);
    const rows = await q.execute();
    const page = rows.slice(0, query.limit);
    const secrets = page.length === 0 ? [] : await this.#db.selectFrom('client_secrets').selectAll().where('client_id', 'in', page.map((r) => r.id)).orderBy('created_at', 'asc').execute();
    const now = Date.now();
    return {
      items: page.map((r) => toDto(r, secrets.filter((s) => s.client_id === r.id), now)),
      nextCursor: rows.length > query.limit ? page[page.length - 1]!.id : null,
    };
  }

  /**
   * Applies a checked patch; disabling, narrowing the scopes or replacing the keys revokes the
   * client's tokens. New keys or re-enabling hand the client's scopes to whoever holds its
   * credentials: only an admin whose own scopes cover them may (403 RMP_SCOPE_EXCEEDED).
   */
  async update(actorId: string, ceiling: ReadonlySet<string> | undefined, id: string, patch: ClientPatch, client: ClientInfo): Promise<ClientDto | undefined> {
    const row = await this.#db.selectFrom('oauth_clients').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) return undefined;
    if (patch.jwks !== undefined || (patch.status === 'active' && row.disabled_at !== null)) this.#checkScopes(actorId, ceiling, parseList(row.scopes), client);
    const now = Date.now();
    const set: Partial<ClientRow> = { updated_at: iso(now) };
    const changed: string[] = [];
    let cutOff = false;
    if (patch.name !== undefined) {
      set.name = patch.name;
      changed.push('name');
    }
    if (patch.scopes !== undefined) {
      const scopes = this.#checkScopes(actorId, ceiling, patch.scopes, client);
      const kept = new Set(scopes);
      cutOff ||= parseList(row.scopes).some((s) => !kept.has(s));
      set.scopes = JSON.stringify(scopes);
      changed.push('scopes');
    }
    if (patch.introspection !== undefined) {
      set.introspection = patch.introspection ? 1 : 0;
      changed.push('introspection');
    }
    if (patch.tokenTtlS !== undefined) {
      set.token_ttl = patch.tokenTtlS === null ? null : this.#checkTtl(patch.tokenTtlS)!;
      changed.push('tokenTtl');
    }
    if (patch.jwks !== undefined) {
      if (row.auth_method !== 'private_key_jwt') throw invalidField('/jwks', 'is only for authMethod private_key_jwt');
      set.jwks = JSON.stringify(await checkJwks(patch.jwks));
      // New keys are most often a reaction to a lost one: what was obtained with the old ones goes.
      cutOff = true;
      changed.push('jwks');
    }
    if (patch.status === 'disabled') {
      // Again when already disabled: a retry publishes the cut-off that a failure may have lost.
      if (row.disabled_at === null) set.disabled_at = iso(now);
      cutOff = true;
      changed.push('status');
    }
    if (patch.status === 'active' && row.disabled_at !== null) {
      set.disabled_at = null;
      changed.push('status');
    }
    await this.#db.transaction().execute(async (trx) => {
      await trx.updateTable('oauth_clients').set(set).where('id', '=', id).execute();
      if (cutOff) await this.#recordCutOff(trx, id, now);
    });
    if (cutOff) await this.#cutOff(id);
    this.#emit({ type: 'client_updated', level: 'INFO', description: `OAuth client updated: ${changed.join(', ') || 'nothing'}`, args: [id], actor: actorId, subject: `client:${id}`, data: { fields: changed.join(' '), tokensRevoked: cutOff } }, client);
    return this.get(id);
  }

  /** Deletes a client: its secrets with it, and every token it holds refused from now on. */
  async delete(actorId: string, id: string, client: ClientInfo): Promise<boolean> {
    const deleted = await this.#db.transaction().execute(async (trx) => {
      const done = await trx.deleteFrom('oauth_clients').where('id', '=', id).executeTakeFirst();
      if (Number(done.numDeletedRows) !== 1) return false;
      // Outlives the row: tokens it holds stay refused after a restart too.
      await this.#recordCutOff(trx, id, Date.now());
      return true;
    });
    if (!deleted) return false;
    await this.#cutOff(id);
    this.#emit({ type: 'client_deleted', level: 'INFO', description: 'OAuth client deleted; its tokens are refused', args: [id], actor: actorId, subject: `client:${id}` }, client);
    return true;
  }

  /**
   * A new secret (shown once). The secrets in use until now keep working for `overlapMs` (0: they
   * stop at once), so the client can be redeployed with the new one without an outage.
   */
  async rotateSecret(actorId: string, ceiling: ReadonlySet<string> | undefined, id: string, overlapMs: number, client: ClientInfo): Promise<{ secret: string; secretId: string; previousExpireAt: string } | undefined> {
    if (overlapMs < 0 || overlapMs > MAX_SECRET_OVERLAP_MS) throw invalidField('/overlap', 'must be between 0s and 30d');
    const row = await this.#db.selectFrom('oauth_clients').select(['id', 'auth_method', 'scopes']).where('id', '=', id).executeTakeFirst();
    if (row === undefined) return undefined;
    if (row.auth_method === 'private_key_jwt') throw invalidField('/', 'a private_key_jwt client has no secret: replace its jwks instead');
    // A new secret hands over the client's scopes: only to an admin whose own scopes cover them.
    this.#checkScopes(actorId, ceiling, parseList(row.scopes), client);
    const secret = newCredential('clientSecret', this.settings.env);
    const now = Date.now();
    const until = iso(now + overlapMs);
    const fresh = this.#secretRow(id, secret, now);
    await this.#db.transaction().execute(async (trx) => {
      // Two rotations at once are serialized (PostgreSQL reads committed rows only: each would miss
      // the other's new secret and leave two that never expire).
      if (trx.getExecutor().adapter instanceof PostgresAdapter) await trx.selectFrom('oauth_clients').select('id').where('id', '=', id).forUpdate().execute();
      // Every secret still live ends at the overlap's end (an earlier end stays earlier).
      await trx.updateTable('client_secrets').set({ expires_at: until }).where('client_id', '=', id).where('revoked_at', 'is', null).where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', until)])).execute();
      await trx.insertInto('client_secrets').values(fresh).execute();
    });
    this.#emit({ type: 'authn_token_created', level: 'INFO', description: 'client secret rotated', args: [id], actor: actorId, subject: `client:${id}`, data: { kind: 'client_secret', secret: fresh.id, previousExpireAt: until } }, client);
    return { secret, secretId: fresh.id, previousExpireAt: until };
  }

  /** Revokes one secret at once (a leaked one), and every token the client holds. */
  async revokeSecret(actorId: string, id: string, secretId: string, client: ClientInfo): Promise<boolean> {
    const revoked = await this.#db.transaction().execute(async (trx) => {
      const now = Date.now();
      const done = await trx.updateTable('client_secrets').set({ revoked_at: iso(now) }).where('id', '=', secretId).where('client_id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
      if (Number(done.numUpdatedRows) !== 1) return false;
      // A secret is revoked because it leaked: the tokens it may have obtained go with it.
      await this.#recordCutOff(trx, id, now);
      return true;
    });
    if (!revoked) return false;
    await this.#cutOff(id);
    this.#emit({ type: 'authn_token_revoked', level: 'INFO', description: 'client secret revoked; the client\'s tokens are refused', args: [id], actor: actorId, subject: `client:${id}`, data: { kind: 'client_secret', secret: secretId } }, client);
    return true;
  }

  // ── the OAuth endpoints ──────────────────────────────────────────────────────────────────

  /**
   * Authenticates a confidential client (RFC 6749 §2.3): the method it registered, a live secret
   * compared in constant time, or a single-use assertion signed with one of its keys (RFC 7523
   * §3) whose audience is one of `audiences`. Unknown client, wrong secret, wrong method,
   * disabled client: the same `invalid_client`.
   */
  async authenticate(presented: PresentedClient, audiences: readonly string[], client: ClientInfo): Promise<AuthenticatedClient> {
    if (presented.method === 'none') throw invalidClient('This endpoint needs a confidential client.');
    const checkedAt = Date.now();
    let id = presented.id;
    let claims: { iss?: string; sub?: string; jti?: string; exp?: number } = {};
    if (presented.method === 'private_key_jwt') {
      try {
        claims = decodeJwt(presented.assertion);
      } catch {
        throw this.#failed(presented.id, 'malformed assertion', client);
      }
      if (typeof claims.iss !== 'string' || claims.iss !== claims.sub || (id !== undefined && id !== claims.iss)) throw this.#failed(id ?? claims.iss, 'assertion iss/sub', client);
      id = claims.iss;
    }
    if (id === undefined || !CLIENT_ID.test(id)) throw this.#failed(undefined, 'unknown client', client);
    const row = await this.#db.selectFrom('oauth_clients').selectAll().where('id', '=', id).executeTakeFirst();
    let secretId: string | undefined;
    if (presented.method !== 'private_key_jwt') {
      // Even for an unknown client the secret is hashed and compared: the answer takes as long.
      secretId = await this.#matchingSecret(row?.id ?? '', presented.secret);
      if (row === undefined || secretId === undefined) throw this.#failed(id, row === undefined ? 'unknown client' : 'wrong secret', client);
    }
    if (row === undefined) throw this.#failed(id, 'unknown client', client);
    if (row.auth_method !== presented.method) throw this.#failed(id, `authenticated with ${presented.method}, registered ${row.auth_method}`, client);
    if (row.disabled_at !== null) throw this.#failed(id, 'disabled', client);
    if (presented.method === 'private_key_jwt') await this.#checkAssertion(row, presented.assertion, audiences, client);
    return { id: row.id, scopes: parseList(row.scopes), introspection: row.introspection === 1, tokenTtlS: Math.min(row.token_ttl ?? this.settings.defaultTokenTtlS, this.settings.maxTokenTtlS), secretId, checkedAt };
  }

  /**
   * The client credentials grant (RFC 6749 §4.4): a token for the requested scopes, every one of
   * them within the client's ceiling (otherwise `invalid_scope`, nothing issued), or for the whole
   * ceiling when none is asked for. No refresh token (§4.4.3).
   */
  async issue(authenticated: AuthenticatedClient, scope: string | undefined, client: ClientInfo): Promise<{ access_token: string; token_type: 'Bearer'; expires_in: number; scope: string }> {
    const ceiling = new Set(authenticated.scopes);
    const requested = scope === undefined ? [...ceiling] : [...new Set(scope.split(' ').filter((s) => s !== ''))];
    const beyond = requested.filter((s) => !ceiling.has(s));
    if (beyond.length > 0 || requested.length === 0) {
      this.#emit({ type: 'authz_fail', level: 'WARN', description: 'client asked for scopes beyond its ceiling', args: [authenticated.id], actor: `client:${authenticated.id}`, subject: `client:${authenticated.id}`, data: { scopes: beyond.join(' ') } }, client);
      throw new OAuthError(400, 'invalid_scope', requested.length === 0 ? 'The client has no scope to be given.' : 'A requested scope is not granted to this client.');
    }
    const granted = requested.join(' ');
    const access = await this.#tokens.issueForClient(authenticated.id, granted, authenticated.tokenTtlS);
    // The client may have been disabled, narrowed or lost the secret it used while this request
    // ran: a token signed from what was read before that must not live (the cut-off made then
    // may predate its iat). Checked now, after signing; if so it is denylisted and refused.
    if (!(await this.#stillGranted(authenticated, requested))) {
      await this.#revocation.revokeToken(access.jti, access.exp + CUTOFF_SKEW_S);
      throw this.#failed(authenticated.id, 'changed during the request', client);
    }
    this.#emit({ type: 'authn_token_created', level: 'INFO', description: 'client credentials token issued', args: [authenticated.id], actor: `client:${authenticated.id}`, subject: `client:${authenticated.id}`, data: { kind: 'client_credentials', scopes: granted, jti: this.#auditId(access.jti) } }, client);
    return { access_token: access.token, token_type: 'Bearer', expires_in: authenticated.tokenTtlS, scope: granted };
  }

  // ── internals ────────────────────────────────────────────────────────────────────────────

  /**
   * Every token the client holds is refused from now on: the not-before time of `client:<id>`,
   * recorded in `revoked_subjects` (replayed at start and polled by every node, so a restart or a
   * CLI without Redis loses none) and published to the revocation store. Taken again after the
   * change committed, so a token signed while it was being made is covered too.
   */
  async #cutOff(id: string): Promise<void> {
    const notBefore = Date.now() + 1;
    await this.#recordCutOff(this.#db, id, notBefore);
    await this.#revocation.revokeSubject(`client:${id}`, notBefore / 1000);
  }

  async #recordCutOff(db: Kysely<Database>, id: string, notBefore: number): Promise<void> {
    const at = iso(notBefore);
    // Kept until no token it covers can be alive (the longest client token, plus skew).
    const expires = iso(notBefore + (this.settings.maxTokenTtlS + CUTOFF_SKEW_S) * 1000);
    await db
      .insertInto('revoked_subjects')
      .values({ subject: `client:${id}`, not_before: at, expires_at: expires })
      .onConflict((oc) => oc.column('subject').doUpdateSet({ not_before: at, expires_at: expires }).where('revoked_subjects.not_before', '<', at))
      .execute();
  }

  /**
   * Cut-offs made by other nodes or the CLI since the last call, into this node's revocation
   * store (all of them at start). Called every `keys.refresh`.
   */
  async syncCutOffs(now = Date.now()): Promise<void> {
    let q = this.#db.selectFrom('revoked_subjects').select(['subject', 'not_before']).where('expires_at', '>', iso(now)).orderBy('not_before', 'asc');
    if (this.#cutOffsSeen !== undefined) q = q.where('not_before', '>', this.#cutOffsSeen);
    for (const row of await q.execute()) {
      await this.#revocation.revokeSubject(row.subject, Date.parse(row.not_before) / 1000);
      this.#cutOffsSeen = row.not_before;
    }
    this.#cutOffsSeen ??= iso(0);
  }

  /** Deletes cut-offs no token can outlive any more. */
  async sweep(now = Date.now()): Promise<void> {
    await this.#db.deleteFrom('revoked_subjects').where('expires_at', '<', iso(now)).execute();
  }

  async #stillGranted(authenticated: AuthenticatedClient, scopes: readonly string[]): Promise<boolean> {
    const row = await this.#db.selectFrom('oauth_clients').select(['scopes', 'disabled_at']).where('id', '=', authenticated.id).executeTakeFirst();
    if (row === undefined || row.disabled_at !== null) return false;
    const ceiling = new Set(parseList(row.scopes));
    if (scopes.some((s) => !ceiling.has(s))) return false;
    if (authenticated.secretId !== undefined) {
      const secret = await this.#db.selectFrom('client_secrets').select(['revoked_at', 'expires_at']).where('id', '=', authenticated.secretId).executeTakeFirst();
      if (secret === undefined || secret.revoked_at !== null || (secret.expires_at !== null && Date.parse(secret.expires_at) <= Date.now())) return false;
    }
    const cut = await this.#db.selectFrom('revoked_subjects').select('not_before').where('subject', '=', `client:${authenticated.id}`).executeTakeFirst();
    return cut === undefined || Date.parse(cut.not_before) <= authenticated.checkedAt;
  }

  #failed(id: string | undefined, reason: string, client: ClientInfo): OAuthError {
    const known = id !== undefined && CLIENT_ID.test(id);
    this.#emit({ type: 'authn_login_fail', level: 'WARN', description: `client authentication failed: ${reason}`, ...(known ? { args: [id], subject: `client:${id}` } : {}), data: { kind: 'client', reason } }, client);
    return invalidClient();
  }

  /** The id of the client's live secret that this is, compared in constant time with every live one. */
  async #matchingSecret(clientId: string, secret: string): Promise<string | undefined> {
    if (!isCredential(secret, 'clientSecret', this.settings.env)) return undefined;
    const now = iso(Date.now());
    const secrets = await this.#db
      .selectFrom('client_secrets')
      .select(['id', 'secret_hash', 'pepper_version'])
      .where('client_id', '=', clientId)
      .where('revoked_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .execute();
    let match: string | undefined;
    // Nothing to compare with (an unknown client): one HMAC anyway, so the work is the same.
    if (secrets.length === 0) credentialHash(this.#secrets.current('credential-pepper').key, secret);
    for (const s of secrets) {
      let pepper = this.#secrets.get('credential-pepper', Number(s.pepper_version));
      if (pepper === undefined) pepper = await this.#refreshedPepper(Number(s.pepper_version));
      // Every live secret is compared (constant time each), not only until the first match.
      if (pepper !== undefined && TokenHasher.equal(credentialHash(pepper, secret), s.secret_hash)) match = s.id;
    }
    return match;
  }

  /** A pepper version another node made (a master-key rotation): read again, at most every 5 s. */
  async #refreshedPepper(version: number): Promise<Buffer | undefined> {
    const now = Date.now();
    if (now - this.#pepperRefreshedAt >= 5000) {
      this.#pepperRefreshedAt = now;
      await this.#secrets.refresh();
    }
    return this.#secrets.get('credential-pepper', version);
  }

  async #checkAssertion(row: ClientRow, assertion: string, audiences: readonly string[], client: ClientInfo): Promise<void> {
    const jwks = row.jwks === null ? { keys: [] } : (JSON.parse(row.jwks) as JSONWebKeySet);
    let payload;
    try {
      ({ payload } = await jwtVerify(assertion, createLocalJWKSet(jwks), {
        algorithms: [...ASSERTION_ALGORITHMS],
        issuer: row.id,
        subject: row.id,
        audience: [...audiences],
        requiredClaims: ['exp', 'jti'],
        clockTolerance: 30,
      }));
    } catch (error) {
      if (error instanceof errors.JOSEError) throw this.#failed(row.id, `assertion refused (${error.code})`, client);
      throw error;
    }
    const exp = payload.exp!;
    const nowS = Date.now() / 1000;
    if (exp - nowS > MAX_ASSERTION_S) throw this.#failed(row.id, 'assertion lives too long', client);
    if (typeof payload.jti !== 'string' || payload.jti.length > 200) throw this.#failed(row.id, 'assertion jti', client);
    // Single use (RFC 7523 §3, item 7): its jti is recorded until it expires; a second use fails.
    const used = await this.#db
      .insertInto('revoked_tokens')
      .values({ jti: `cla:${row.id}:${this.#auditId(payload.jti)}`, expires_at: iso((exp + 60) * 1000) })
      .onConflict((oc) => oc.column('jti').doNothing())
      .executeTakeFirst();
    if (numInserted(used) !== 1) throw this.#failed(row.id, 'assertion replayed', client);
  }

  #checkScopes(actorId: string, ceiling: ReadonlySet<string> | undefined, scopes: readonly string[], client: ClientInfo): string[] {
    const list = [...new Set(scopes)];
    for (const s of list) if (!SCOPE.test(s)) throw invalidField('/scopes', 'each scope must be 1 to 128 printable characters without spaces, quotes or backslashes');
    const beyond = ceiling === undefined ? [] : list.filter((s) => !ceiling.has(s));
    if (beyond.length > 0) {
      this.#emit({ type: 'authz_fail', level: 'WARN', description: 'client refused: scopes beyond its creator\'s', args: [actorId], actor: actorId, data: { scopes: beyond.join(' ') } }, client);
      throw new RampartError('RMP_SCOPE_EXCEEDED', { detail: `A client cannot be given scopes its creator does not have: ${beyond.join(', ')}.`, extensions: { scopes: beyond } });
    }
    return list;
  }

  #checkTtl(ttlS: number | undefined): number | undefined {
    if (ttlS === undefined) return undefined;
    if (!Number.isInteger(ttlS) || ttlS < 60 || ttlS > this.settings.maxTokenTtlS) throw invalidField('/tokenTtl', `must be between 1m and ${this.settings.maxTokenTtlS}s (identity.clients.tokenTtl, or tokens.accessTtl)`);
    return ttlS;
  }

  #secretRow(clientId: string, secret: string, now: number): SecretRow {
    const pepper = this.#secrets.current('credential-pepper');
    return { id: randomUUID(), client_id: clientId, prefix: shownPrefix(secret), secret_hash: credentialHash(pepper.key, secret), pepper_version: pepper.version, created_at: iso(now), expires_at: null, revoked_at: null };
  }
}

/** Public keys only, importable, with ids: what `private_key_jwt` assertions are checked against. */
async function checkJwks(jwks: JSONWebKeySet | undefined): Promise<JSONWebKeySet> {
  if (jwks === undefined || !Array.isArray(jwks.keys) || jwks.keys.length === 0 || jwks.keys.length > 10) throw invalidField('/jwks', 'a private_key_jwt client needs a JWK Set of 1 to 10 public keys');
  const keys: JWK[] = [];
  for (const [i, key] of jwks.keys.entries()) {
    if (typeof key !== 'object' || key === null) throw invalidField(`/jwks/keys/${i}`, 'must be a JWK');
    for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']) if (secret in key) throw invalidField(`/jwks/keys/${i}`, 'must be a public key (it holds private key material: never send that)');
    if (!['RSA', 'EC', 'OKP'].includes(String(key.kty))) throw invalidField(`/jwks/keys/${i}/kty`, 'must be RSA, EC or OKP');
    if (key.kty === 'RSA' && typeof key.n === 'string' && Buffer.from(key.n, 'base64url').length < 256) throw invalidField(`/jwks/keys/${i}`, 'RSA keys must be at least 2048 bits');
    try {
      await importJWK({ ...key, ext: true }, key.alg ?? (key.kty === 'RSA' ? 'RS256' : key.kty === 'EC' ? 'ES256' : 'EdDSA'));
    } catch {
      throw invalidField(`/jwks/keys/${i}`, 'is not a usable public key');
    }
    const { kid, kty, crv, x, y, n, e, alg, use } = key;
    keys.push(Object.fromEntries(Object.entries({ kid, kty, crv, x, y, n, e, alg, use }).filter(([, v]) => v !== undefined)) as JWK);
  }
  return { keys };
}

function invalidField(pointer: string, detail: string): RampartError {
  return new RampartError('RMP_VALIDATION_FAILED', { extensions: { errors: [{ pointer, detail }] } });
}

function toDto(row: ClientRow, secrets: readonly SecretRow[], now: number): ClientDto {
  return {
    id: row.id,
    name: row.name,
    scopes: parseList(row.scopes),
    authMethod: row.auth_method,
    introspection: row.introspection === 1,
    tokenTtl: row.token_ttl,
    jwks: row.jwks === null ? null : (JSON.parse(row.jwks) as JSONWebKeySet).keys,
    status: row.disabled_at === null ? 'active' : 'disabled',
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    createdBy: row.created_by,
    secrets: secrets.map((s) => ({
      id: s.id,
      prefix: s.prefix,
      createdAt: s.created_at,
      expiresAt: s.expires_at,
      status: s.revoked_at !== null ? 'revoked' : s.expires_at === null ? 'active' : Date.parse(s.expires_at) <= now ? 'expired' : 'expiring',
    })),
  };
}
