import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../storage/schema.js';
import type { EmittedEvent, EventSink } from './events.js';

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

  constructor(db: Kysely<Database>, logger: Logger) {
    this.#db = db;
    this.#logger = logger;
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
