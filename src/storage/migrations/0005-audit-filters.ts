import { type Kysely, type Migration } from 'kysely';

/**
 * Indexes for the admin API's event filters (issue 9): by actor, client address, route, level and
 * request id, newest first. Without them a filtered read scans the whole table, and SQLite's
 * reads are synchronous: a year of events would stall the process on every filtered page.
 */
const INDEXES: [name: string, columns: string[]][] = [
  ['audit_events_actor', ['actor', 'id']],
  ['audit_events_client_ip', ['client_ip', 'id']],
  ['audit_events_route', ['route', 'id']],
  ['audit_events_level', ['level', 'id']],
  ['audit_events_request_id', ['request_id']],
];

export const auditFilters: Migration = {
  async up(db: Kysely<unknown>) {
    for (const [name, columns] of INDEXES) await db.schema.createIndex(name).on('audit_events').columns(columns).execute();
  },
  async down(db: Kysely<unknown>) {
    for (const [name] of INDEXES) await db.schema.dropIndex(name).execute();
  },
};
