import { sql, type Kysely } from 'kysely';
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
    if (this.#pending.length >= MAX_PENDING) {
      this.#pending.shift();
      this.dropped++;
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
        // Is the database away, or is one of these rows unacceptable to it? A row it refuses must
        // not hold back every event after it (regression test audit-sink-stuck-on-bad-row).
        if (!(await this.#reachable())) {
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

  async #reachable(): Promise<boolean> {
    try {
      await sql`select 1`.execute(this.#db);
      return true;
    } catch {
      return false;
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

/** A row of the audit table; every text cut to its column's size. */
function toRow(e: EmittedEvent) {
  const cut = (value: string | undefined, size: number) => (value === undefined ? null : value.slice(0, size));
  return {
    time: e.time,
    event: e.event.slice(0, 200),
    type: e.type.slice(0, 64),
    level: e.level,
    description: e.description.slice(0, 2000),
    request_id: cut(e.requestId, 128),
    client_ip: cut(e.clientIp, 64),
    route: cut(e.route, 64),
    actor: cut(e.actor, 300),
    subject: cut(e.subject, 300),
    data: e.data === undefined ? null : boundedJson(e.data),
  };
}

function boundedJson(data: unknown): string {
  const text = JSON.stringify(data);
  return text.length <= 8000 ? text : JSON.stringify({ truncated: true, bytes: text.length });
}
