import { randomUUID } from 'node:crypto';
import { PostgresAdapter, type Kysely, type Selectable } from 'kysely';
import { RampartError } from '../errors/problem.js';
import type { SecurityEvent } from '../observability/events.js';
import { cachedKeySource, type FoundKey, type KeySource } from '../policies/api-key/policy.js';
import type { Revocation } from '../revocation/revocation.js';
import type { ApiKeyTable, Database } from '../storage/schema.js';
import { credentialHash, isCredential, newCredential, shownPrefix, type CredentialEnvironment } from './credentials.js';
import { decodeCursor, encodeCursor, iso, parseList } from './rows.js';
import type { SecretKeys } from './secret-keys.js';
import { TokenHasher } from './tokens.js';
import type { ClientInfo } from './service.js';

/** Revocations outlive `expires_at` by the largest clock skew any check allows (seconds). */
const SKEW_S = 300;
/** Revoked and expired keys stay listed this long, then the sweep deletes them. */
const KEEP_ENDED_MS = 30 * 86_400_000;

export interface ApiKeySettings {
  env: CredentialEnvironment;
  defaultTtlMs: number;
  maxTtlMs: number;
  maxPerUser: number;
  /** How long the gateway trusts a looked-up key before reading it again (revocation is checked on every request regardless). */
  cacheTtlMs: number;
}

/** An API key as its owner or an admin sees it: never the key or its hash. */
export interface ApiKeyDto {
  id: string;
  name: string;
  /** The first characters of the key, to recognise it. */
  prefix: string;
  userId: string;
  scopes: string[];
  status: 'active' | 'expired' | 'revoked';
  createdAt: string;
  createdBy: string;
  expiresAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

/** Who asks: a user (their current roles), or the operator's CLI. */
export interface KeyCreator {
  id: string;
  /** Undefined for the CLI: the owner's scopes are then the only ceiling. */
  roles: readonly string[] | undefined;
}

type Emit = (event: SecurityEvent, client: ClientInfo) => void;
type Row = Selectable<ApiKeyTable>;


/**
 * API keys of the identity service: `rmp_<env>_…` credentials a user makes for a program. Only an
 * HMAC-SHA-256 under a versioned pepper is stored; the key is shown once. A key acts as its
 * owner with at most the scopes both its creator and its owner have (checked at creation, and
 * intersected again with the owner's current scopes at every look-up), expires (always), and is
 * revoked through the revocation interface so every gateway refuses it on the next request.
 */
export class ApiKeys {
  readonly #db: Kysely<Database>;
  readonly #secrets: SecretKeys;
  readonly #revocation: Revocation;
  readonly #emit: Emit;
  readonly #scopesOf: (roles: readonly string[]) => string[];
  readonly settings: ApiKeySettings;
  /** Last use by key id, written in batches (never a write per request). */
  readonly #used = new Map<string, number>();
  #pepperRefreshedAt = 0;
  /** The gateway's cached view (one per service, shared by every route and reload). */
  readonly source: KeySource;

  constructor(parts: { db: Kysely<Database>; secrets: SecretKeys; revocation: Revocation; emit: Emit; scopesOf: (roles: readonly string[]) => string[]; settings: ApiKeySettings }) {
    this.#db = parts.db;
    this.#secrets = parts.secrets;
    this.#revocation = parts.revocation;
    this.#emit = parts.emit;
    this.#scopesOf = parts.scopesOf;
    this.settings = parts.settings;
    this.source = this.#gatewaySource();
  }

  /**
   * Makes a key for `ownerId`. Its scopes default to everything the creator may give, and may
   * never exceed it: a scope outside the creator's or the owner's current scopes is refused (403
   * RMP_SCOPE_EXCEEDED, naming them).
   */
  async create(creator: KeyCreator, input: { ownerId: string; name: string; scopes?: readonly string[] | undefined; expiresInMs?: number | undefined }, client: ClientInfo): Promise<{ key: ApiKeyDto; secret: string }> {
    const ttl = input.expiresInMs ?? this.settings.defaultTtlMs;
    if (ttl < 60_000 || ttl > this.settings.maxTtlMs) {
      throw new RampartError('RMP_VALIDATION_FAILED', { extensions: { errors: [{ pointer: '/expiresIn', detail: `must be between 1m and the configured maximum (${Math.floor(this.settings.maxTtlMs / 86_400_000)}d)` }] } });
    }
    const owner = await this.#db.selectFrom('users').select(['id', 'roles', 'disabled_at']).where('id', '=', input.ownerId).executeTakeFirst();
    if (owner === undefined || owner.disabled_at !== null) throw new RampartError('RMP_OBJECT_NOT_FOUND', { detail: 'No such user.' });
    const ceiling = new Set(this.#scopesOf(parseList(owner.roles)));
    if (creator.roles !== undefined) {
      const mine = new Set(this.#scopesOf(creator.roles));
      for (const s of [...ceiling]) if (!mine.has(s)) ceiling.delete(s);
    }
    const scopes = input.scopes === undefined ? [...ceiling] : [...new Set(input.scopes)];
    const beyond = scopes.filter((s) => !ceiling.has(s));
    if (beyond.length > 0) {
      this.#emit({ type: 'authz_fail', level: 'WARN', description: 'API key refused: scopes beyond its creator\'s', args: [creator.id], actor: creator.id, subject: input.ownerId, data: { scopes: beyond.join(' ') } }, client);
      throw new RampartError('RMP_SCOPE_EXCEEDED', { detail: `An API key cannot grant scopes its creator does not have: ${beyond.join(', ')}.`, extensions: { scopes: beyond } });
    }
    const now = Date.now();
    const secret = newCredential('apiKey', this.settings.env);
    const pepper = this.#secrets.current('credential-pepper');
    const row: Row = {
      id: randomUUID(),
      user_id: input.ownerId,
      name: input.name,
      prefix: shownPrefix(secret),
      key_hash: credentialHash(pepper.key, secret),
      pepper_version: pepper.version,
      scopes: JSON.stringify(scopes),
      created_by: creator.id,
      created_at: iso(now),
      expires_at: iso(now + ttl),
      last_used_at: null,
      revoked_at: null,
    };
    // Counted and inserted with the owner's row locked (PostgreSQL; SQLite runs one transaction at
    // a time): keys made at once cannot pass the limit together.
    await this.#db.transaction().execute(async (trx) => {
      if (trx.getExecutor().adapter instanceof PostgresAdapter) await trx.selectFrom('users').select('id').where('id', '=', input.ownerId).forUpdate().execute();
      const live = await trx
        .selectFrom('api_keys')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('user_id', '=', input.ownerId)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', iso(now))
        .executeTakeFirstOrThrow();
      if (Number(live.n) >= this.settings.maxPerUser) throw new RampartError('RMP_API_KEY_LIMIT', { detail: `A user may hold at most ${this.settings.maxPerUser} live API keys; revoke one first.` });
      await trx.insertInto('api_keys').values(row).execute();
    });
    this.#emit({ type: 'authn_token_created', level: 'INFO', description: 'API key created', args: [input.ownerId], actor: creator.id, subject: input.ownerId, data: { kind: 'api_key', key: row.id, scopes: scopes.join(' '), expiresAt: row.expires_at } }, client);
    return { key: toDto(row, now), secret };
  }

  async get(id: string): Promise<ApiKeyDto | undefined> {
    await this.flushUse();
    const row = await this.#db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : toDto(row, Date.now());
  }

  /** Keys of one user (or every user's, for an admin listing all), newest first, by cursor. */
  async list(query: { userId: string | undefined; limit: number; cursor?: string | undefined }): Promise<{ items: ApiKeyDto[]; nextCursor: string | null }> {
    await this.flushUse();
    let q = this.#db.selectFrom('api_keys').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(query.limit + 1);
    if (query.userId !== undefined) q = q.where('user_id', '=', query.userId);
    if (query.cursor !== undefined) {
      const [createdAt, id] = decodeCursor(query.cursor);
      q = q.where((eb) => eb.or([eb('created_at', '<', createdAt), eb.and([eb('created_at', '=', createdAt), eb('id', '<', id)])]));
    }
    const rows = await q.execute();
    const now = Date.now();
    const page = rows.slice(0, query.limit);
    const last = rows.length > query.limit ? page[page.length - 1] : undefined;
    return { items: page.map((r) => toDto(r, now)), nextCursor: last === undefined ? null : encodeCursor(last.created_at, last.id) };
  }

  /**
   * Revokes a key: recorded in the database, then denylisted in the revocation store (by
   * `apikey:<id>`, until it would have expired) before this resolves — so the next request with
   * it is refused by every gateway sharing that store. False when it is unknown or already revoked.
   */
  async revoke(actorId: string, id: string, client: ClientInfo, reason = 'revoked'): Promise<boolean> {
    const now = Date.now();
    const row = await this.#db.selectFrom('api_keys').select(['id', 'user_id', 'expires_at']).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    if (row === undefined) return false;
    const done = await this.#db.updateTable('api_keys').set({ revoked_at: iso(now) }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    if (Number(done.numUpdatedRows) !== 1) return false;
    await this.#deny(row.id, row.expires_at);
    this.#emit({ type: 'authn_token_revoked', level: 'INFO', description: `API key revoked (${reason})`, args: [row.user_id], actor: actorId, subject: row.user_id, data: { kind: 'api_key', key: row.id, reason } }, client);
    return true;
  }

  /** Every live key of a user (disabled or deleted): revoked at once, everywhere. */
  async revokeAllOf(userId: string, actorId: string, client: ClientInfo, reason: string): Promise<void> {
    const rows = await this.#db.selectFrom('api_keys').select('id').where('user_id', '=', userId).where('revoked_at', 'is', null).execute();
    for (const r of rows) await this.revoke(actorId, r.id, client, reason);
  }

  /** Revocations that must survive a restart of a memory revocation store. */
  async replayRevocations(now = Date.now()): Promise<void> {
    const rows = await this.#db.selectFrom('api_keys').select(['id', 'expires_at']).where('revoked_at', 'is not', null).where('expires_at', '>', iso(now - SKEW_S * 1000)).execute();
    for (const r of rows) await this.#deny(r.id, r.expires_at);
  }

  /**
   * The look-up the gateway's `api-key` policy makes (through `gatewaySource`): by the HMAC of
   * the presented key under each pepper version, refused without a query when the key does not
   * have the shape and checksum of this environment's keys. The key's scopes are cut down to
   * what its owner has now; a disabled owner has no keys.
   */
  async lookup(presented: string): Promise<FoundKey | undefined> {
    if (!isCredential(presented, 'apiKey', this.settings.env)) return undefined;
    const found = await this.#find(presented);
    if (found !== undefined) return found;
    // A key made by a node that knows a newer pepper (a master-key rotation): read the peppers
    // again, at most every 5 s, and look once more.
    const now = Date.now();
    if (now - this.#pepperRefreshedAt < 5000) return undefined;
    this.#pepperRefreshedAt = now;
    const before = this.#secrets.all('credential-pepper').length;
    await this.#secrets.refresh();
    return this.#secrets.all('credential-pepper').length === before ? undefined : this.#find(presented);
  }

  async #find(presented: string): Promise<FoundKey | undefined> {
    const candidates = this.#secrets.all('credential-pepper').map((p) => ({ version: p.version, hash: credentialHash(p.key, presented) }));
    const rows = await this.#db
      .selectFrom('api_keys as k')
      .innerJoin('users as u', 'u.id', 'k.user_id')
      .select(['k.id', 'k.user_id', 'k.key_hash', 'k.pepper_version', 'k.scopes', 'k.expires_at', 'k.revoked_at', 'u.roles', 'u.disabled_at'])
      .where(
        'k.key_hash',
        'in',
        candidates.map((c) => c.hash),
      )
      .execute();
    for (const row of rows) {
      const candidate = candidates.find((c) => c.version === Number(row.pepper_version));
      // The index narrows to one row; the comparison that decides is constant-time.
      if (candidate === undefined || !TokenHasher.equal(candidate.hash, row.key_hash)) continue;
      const revoked = row.revoked_at !== null || row.disabled_at !== null;
      const allowed = new Set(this.#scopesOf(parseList(row.roles)));
      const scopes = parseList(row.scopes).filter((s) => allowed.has(s));
      return {
        id: row.id,
        expiresAt: Date.parse(row.expires_at),
        consumer: Object.freeze({ id: row.user_id, type: 'apiKey' as const, scopes: Object.freeze(revoked ? [] : scopes), roles: Object.freeze([] as string[]), keyId: row.id }),
        ...(revoked ? { revoked } : { used: () => this.#used.set(row.id, Date.now()) }),
      };
    }
    return undefined;
  }

  /**
   * What the gateway uses: look-ups cached per key (by its SHA-256, never the key) for
   * `cacheTtl`, and re-read at once when the owner's tokens were cut off since it was loaded (a
   * role change moves their not-before time in the revocation store). Accepted uses are recorded
   * for `lastUsedAt` (the policy calls `used`).
   */
  #gatewaySource(): KeySource {
    const ttl = this.settings.cacheTtlMs;
    return cachedKeySource(
      { lookup: (presented) => this.lookup(presented) },
      {
        size: 10_000,
        ttlMs: ttl,
        negativeTtlMs: ttl,
        stale: (found, loadedAt) => this.#revocation.isRevoked({ sub: found.consumer.id, iat: loadedAt / 1000 }),
      },
    );
  }

  /** Writes the recorded last uses (called on a timer, before listing, and at shutdown). */
  async flushUse(): Promise<void> {
    if (this.#used.size === 0) return;
    const used = [...this.#used];
    this.#used.clear();
    for (const [id, at] of used) {
      const time = iso(at);
      await this.#db
        .updateTable('api_keys')
        .set({ last_used_at: time })
        .where('id', '=', id)
        .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', time)]))
        .execute();
    }
  }

  /** Deletes keys that ended (expired or revoked) more than 30 days ago. */
  async sweep(now = Date.now()): Promise<void> {
    const before = iso(now - KEEP_ENDED_MS);
    await this.#db.deleteFrom('api_keys').where((eb) => eb.or([eb('expires_at', '<', before), eb('revoked_at', '<', before)])).execute();
  }

  async #deny(id: string, expiresAt: string): Promise<void> {
    await this.#revocation.revokeToken(apiKeyRevocationId(id), Date.parse(expiresAt) / 1000 + SKEW_S);
  }
}

/** The id an API key is denylisted by in the revocation store (the `api-key` policy checks it). */
export function apiKeyRevocationId(id: string): string {
  return `apikey:${id}`;
}

function toDto(row: Row, now: number): ApiKeyDto {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    userId: row.user_id,
    scopes: parseList(row.scopes),
    status: row.revoked_at !== null ? 'revoked' : Date.parse(row.expires_at) <= now ? 'expired' : 'active',
    createdAt: row.created_at,
    createdBy: row.created_by,
    expiresAt: row.expires_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}
