import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../storage/schema.js';
import type { EmittedEvent, EventLevel, EventSink } from './events.js';
import type { EventFilter } from './event-ring.js';

/** A row of the audit table as readers see it. */
export interface AuditEvent {
  id: number;
  time: string;
  event: string;
  type: string;
  level: EventLevel;
  description: string;
  actor: string | null;
  subject: string | null;
  requestId: string | null;
  clientIp: string | null;
  route: string | null;
  data: unknown;
}

/** Most events held while the database is away; past it the oldest are dropped and counted. */
const MAX_PENDING = 10_000;
const BATCH = 200;

/**
 * The events module's database sink: the append-only audit table. Events are buffered and written
 * in batches off the request path; while the database is away they wait (bounded, with a count of
 * what had to be dropped, logged). Retention deletes old rows and erases client IPs sooner.
 */
export class AuditSink {
  readonly #db: Kysely<Database>;
  readonly #logger: Logger;
  readonly #pending: EmittedEvent[] = [];
  #flushing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failing = false;
  /** Events dropped because the buffer was full while the database was away. */
  dropped = 0;
  /** Events the database refused (they are in the log only). */
  rejected = 0;
  written = 0;

  /** Events waiting to be written (while the database is away, up to MAX_PENDING). */
  get pending(): number {
    return this.#pending.length;
  }

  readonly #dialect: 'sqlite' | 'postgres';

  constructor(db: Kysely<Database>, logger: Logger, dialect: 'sqlite' | 'postgres' = 'sqlite') {
    this.#db = db;
    this.#logger = logger;
    this.#dialect = dialect;
  }

  readonly sink: EventSink = (event) => {
    // Full (the database has been away a long time): the newest events are dropped and counted,
    // never ones a write in progress holds.
    if (this.#pending.length >= MAX_PENDING) {
      this.dropped++;
      return;
    }
    this.#pending.push(event);
    if (this.#pending.length >= BATCH) void this.flush();
    else this.#timer ??= setTimeout(() => void this.flush(), 100);
  };

  /** Writes everything pending (tests and readers of the audit table call it first). */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#flushing !== undefined) await this.#flushing;
    if (this.#pending.length === 0) return;
    this.#flushing = this.#write().finally(() => (this.#flushing = undefined));
    await this.#flushing;
  }

  async #write(): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending.slice(0, BATCH);
      try {
        await this.#db.insertInto('audit_events').values(batch.map(toRow)).execute();
      } catch (error) {
        // A row the database refuses (a constraint, a value it cannot store) must not hold back
        // every event after it (regression test audit-sink-stuck-on-bad-row): those rows are
        // tried one by one. Anything else means the database is away or busy: everything waits.
        if (!isDataError(error)) {
          if (!this.#failing) this.#logger.error({ err: (error as Error).message, pending: this.#pending.length }, 'audit table unavailable: events are held in memory (bounded) until it is back');
          this.#failing = true;
          this.#timer ??= setTimeout(() => void this.flush(), 1000);
          return;
        }
        for (const event of batch) {
          try {
            await this.#db.insertInto('audit_events').values(toRow(event)).execute();
            this.written++;
          } catch (rowError) {
            if (!isDataError(rowError)) {
              // The database went away mid-way: keep what is left of the batch for later.
              this.#pending.splice(0, batch.indexOf(event));
              this.#failing = true;
              this.#timer ??= setTimeout(() => void this.flush(), 1000);
              return;
            }
            this.rejected++;
            this.#logger.error({ err: (rowError as Error).message, event: event.event.slice(0, 100) }, 'audit table refused an event; it is in the log only');
          }
        }
        this.#pending.splice(0, batch.length);
        continue;
      }
      if (this.#failing) this.#logger.warn({ dropped: this.dropped }, 'audit table is back');
      this.#failing = false;
      this.#pending.splice(0, batch.length);
      this.written += batch.length;
    }
  }

  /** Newest first, after everything pending is written; `cursor` is the last id of the previous page. */
  async list(filter: EventFilter, limit: number, cursor?: number): Promise<{ items: AuditEvent[]; nextCursor: string | null }> {
    await this.flush();
    let q = this.#db.selectFrom('audit_events').selectAll().orderBy('id', 'desc').limit(limit + 1);
    if (cursor !== undefined) q = q.where('id', '<', cursor);
    if (filter.type !== undefined) {
      // A prefix (`authn_`): LIKE with its own wildcard escaped (types are [a-z0-9_]).
      // A prefix (`authn_`) as a range, which the (type, id) index serves: types are [a-z0-9_], and
      // '`' is the character after '_'. PostgreSQL compares in the C collation for it (its own
      // collation may not order '_' by code point).
      if (filter.type.endsWith('_')) {
        const upper = filter.type.slice(0, -1) + '`';
        q = this.#dialect === 'postgres' ? q.where(sql<boolean>`type collate "C" >= ${filter.type} and type collate "C" < ${upper}`) : q.where('type', '>=', filter.type).where('type', '<', upper);
      } else q = q.where('type', '=', filter.type);
    }
    if (filter.level !== undefined) q = q.where('level', '=', filter.level);
    if (filter.route !== undefined) q = q.where('route', '=', filter.route);
    if (filter.clientIp !== undefined) q = q.where('client_ip', '=', filter.clientIp);
    if (filter.actor !== undefined) q = q.where('actor', '=', filter.actor);
    if (filter.subject !== undefined) q = q.where('subject', '=', filter.subject);
    if (filter.requestId !== undefined) q = q.where('request_id', '=', filter.requestId);
    if (filter.since !== undefined) q = q.where('time', '>=', filter.since);
    if (filter.until !== undefined) q = q.where('time', '<', filter.until);
    const rows = await q.execute();
    const page = rows.slice(0, limit);
    return {
      items: page.map((r) => ({
        id: Number(r.id),
        time: r.time,
        event: r.event,
        type: r.type ?? r.event.split(':')[0]!,
        level: r.level as EventLevel,
        description: r.description,
        actor: r.actor,
        subject: r.subject,
        requestId: r.request_id,
        clientIp: r.client_ip,
        route: r.route,
        data: r.data === null ? null : (JSON.parse(r.data) as unknown),
      })),
      nextCursor: rows.length > limit ? String(page[page.length - 1]!.id) : null,
    };
  }

  async get(id: number): Promise<AuditEvent | undefined> {
    await this.flush();
    const row = await this.#db.selectFrom('audit_events').select('id').where('id', '=', id).executeTakeFirst();
    if (row === undefined) return undefined;
    return (await this.list({}, 1, id + 1)).items[0];
  }

  /** Deletes events older than `retentionMs` and erases client IPs older than `ipRetentionMs`. */
  async applyRetention(retentionMs: number, ipRetentionMs: number, now = Date.now()): Promise<void> {
    await this.#db.deleteFrom('audit_events').where('time', '<', new Date(now - retentionMs).toISOString()).execute();
    await this.#db.updateTable('audit_events').set({ client_ip: null }).where('time', '<', new Date(now - ipRetentionMs).toISOString()).where('client_ip', 'is not', null).execute();
  }

  async close(): Promise<void> {
    await this.flush().catch(() => undefined);
    clearTimeout(this.#timer);
  }
}

/**
 * A database error about the row itself (PostgreSQL SQLSTATE classes 22 and 23, SQLite constraint
 * and size errors), as opposed to the database being unreachable or busy.
 */
function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') return false;
  return /^2[23][0-9A-Z]{3}$/.test(code) || /^SQLITE_(CONSTRAINT|TOOBIG|MISMATCH)/.test(code);
}

/** Text as a column can hold it: no NUL (PostgreSQL refuses it in text), at most `size` characters. */
function clean(value: string, size: number): string {
  return value.replaceAll('\u0000', '\uFFFD').slice(0, size);
}

/** A row of the audit table; every text cut to its column's size. */
function toRow(e: EmittedEvent) {
  const cut = (value: string | undefined, size: number) => (value === undefined ? null : clean(value, size));
  return {
    time: e.time,
    event: clean(e.event, 200),
    type: clean(e.type, 64),
    level: e.level,
    description: clean(e.description, 2000),
    request_id: cut(e.requestId, 128),
    client_ip: cut(e.clientIp, 64),
    route: cut(e.route, 64),
    actor: cut(e.actor, 300),
    subject: cut(e.subject, 300),
    data: e.data === undefined ? null : boundedJson(e.data),
  };
}

function boundedJson(data: unknown): string {
  const text = clean(JSON.stringify(data), Infinity);
  return text.length <= 8000 ? text : JSON.stringify({ truncated: true, bytes: text.length });
}
