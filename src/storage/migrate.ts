import { Migrator, PostgresAdapter, sql, type Kysely, type Migration, type MigrationResultSet } from 'kysely';
import { auditEvents } from './migrations/0001-audit-events.js';
import { identity } from './migrations/0002-identity.js';
import { identitySessions } from './migrations/0003-identity-sessions.js';
import { machineCredentials } from './migrations/0004-machine-credentials.js';
import { auditFilters } from './migrations/0005-audit-filters.js';

/** Every migration, in order; names are stable forever (they are recorded in the database). */
export const MIGRATIONS: Record<string, Migration> = {
  '0001-audit-events': auditEvents,
  '0002-identity': identity,
  '0003-identity-sessions': identitySessions,
  '0004-machine-credentials': machineCredentials,
  '0005-audit-filters': auditFilters,
};

/**
 * Brings the database to the latest version. On PostgreSQL, Kysely's migrator takes a lock (a row
 * in `kysely_migration_lock`, in a transaction), so nodes starting at once apply each migration
 * once. SQLite has no such lock between processes sharing a file: a migration that fails because
 * another process applied it first is followed by another pass (at most one per migration).
 * A database with migrations this build does not know is refused.
 */
export async function migrateToLatest<T>(database: Kysely<T>): Promise<{ applied: string[] }> {
  const db = database as unknown as Kysely<unknown>;
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  // Kysely looks for its bookkeeping tables in every schema unless told which: another Rampart
  // database in a sibling schema would be taken for this one's (regression test
  // migrations-see-sibling-schema).
  const schema = postgres ? (await sql<{ schema: string }>`select current_schema() as schema`.execute(db)).rows[0]?.schema : undefined;
  // Up to date already (every start but the first): nothing to ask Kysely's migrator, whose
  // table check reads the catalog of every schema in the database (see below).
  if (postgres && schema !== undefined && (await appliedOnPostgres(db, schema))) return { applied: [] };
  const migrator = new Migrator({ db, provider: { getMigrations: () => Promise.resolve(MIGRATIONS) }, ...(schema !== undefined ? { migrationTableSchema: schema } : {}) });
  let result: MigrationResultSet = await migrator.migrateToLatest();
  // PostgreSQL: the migrator checks for its tables by listing every table of every schema, with
  // functions that fail when a table or schema elsewhere in the database is dropped meanwhile
  // ("column … of relation … does not exist", "schema … does not exist"): another application's
  // DDL, or tests dropping their schemas (regression test migrate-races-concurrent-ddl). Such a
  // pass changed nothing (migrations run in one transaction); it is tried again, a bounded number of times.
  for (let pass = 0; postgres && result.error !== undefined && isCatalogRace(result.error) && pass < 10; pass++) result = await migrator.migrateToLatest();
  // SQLite: while another process is applying migrations, a pass can fail on one it just applied;
  // each failed pass means that process made progress, so the passes are bounded.
  const sqlite = !postgres;
  for (let pass = 0; sqlite && result.error !== undefined && pass <= Object.keys(MIGRATIONS).length; pass++) result = await migrator.migrateToLatest();
  if (result.error !== undefined) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName;
    const why = result.error instanceof Error ? result.error.message : String(result.error);
    throw new Error(failed !== undefined ? `migration ${failed} failed: ${why}` : `migrations failed: ${why}`);
  }
  return { applied: (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}

/** Whether every migration of this build is recorded in `<schema>.kysely_migration` (and no other). */
async function appliedOnPostgres(db: Kysely<unknown>, schema: string): Promise<boolean> {
  let names: string[];
  try {
    names = (await sql<{ name: string }>`select name from ${sql.table(`${schema}.kysely_migration`)}`.execute(db)).rows.map((r) => r.name);
  } catch {
    return false; // no table yet: a first start
  }
  const known = Object.keys(MIGRATIONS);
  return names.length === known.length && known.every((n) => names.includes(n));
}

/**
 * Errors the catalog listing raises when something it lists is dropped by another session; also
 * PostgreSQL's internal "cache lookup failed for namespace|relation …" (XX000), which catalog
 * functions raise when the schema or table they were handed is dropped before they read it.
 */
function isCatalogRace(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  if (code === 'XX000') return /^cache lookup failed for (namespace|relation|type|attribute)/.test((error as Error).message);
  return code === '42703' || code === '3F000' || code === '42P01';
}
