import { PostgresAdapter, type Kysely, type Migration } from 'kysely';

/** The audit table: the events module's database sink. */
export const auditEvents: Migration = {
  async up(db: Kysely<unknown>) {
    const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
    await db.schema
      .createTable('audit_events')
      .addColumn('id', postgres ? 'bigserial' : 'integer', (c) => (postgres ? c.primaryKey() : c.primaryKey().autoIncrement()))
      .addColumn('time', 'varchar(40)', (c) => c.notNull())
      .addColumn('event', 'varchar(200)', (c) => c.notNull())
      .addColumn('level', 'varchar(16)', (c) => c.notNull())
      .addColumn('description', 'text', (c) => c.notNull())
      .addColumn('request_id', 'varchar(128)')
      .addColumn('client_ip', 'varchar(64)')
      .addColumn('route', 'varchar(64)')
      .addColumn('data', 'text')
      .execute();
    await db.schema.createIndex('audit_events_time').on('audit_events').column('time').execute();
    await db.schema.createIndex('audit_events_event').on('audit_events').columns(['event', 'time']).execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('audit_events').execute();
  },
};
