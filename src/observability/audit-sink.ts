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
        await this.#db
          .insertInto('audit_events')
          .values(
            batch.map((e) => ({
              time: e.time,
              event: e.event.slice(0, 200),
              type: e.type,
              level: e.level,
              description: e.description,
              request_id: e.requestId ?? null,
              client_ip: e.clientIp ?? null,
              route: e.route ?? null,
              actor: e.actor ?? null,
              subject: e.subject ?? null,
              data: e.data === undefined ? null : JSON.stringify(e.data),
            })),
          )
          .execute();
      } catch (error) {
        if (!this.#failing) this.#logger.error({ err: (error as Error).message, pending: this.#pending.length }, 'audit table unavailable: events are held in memory (bounded) until it is back');
        this.#failing = true;
        this.#timer ??= setTimeout(() => void this.flush(), 1000);
        return;
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
