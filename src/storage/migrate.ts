import { Migrator, PostgresAdapter, type Kysely, type Migration, type MigrationResultSet } from 'kysely';
import { auditEvents } from './migrations/0001-audit-events.js';

/** Every migration, in order; names are stable forever (they are recorded in the database). */
export const MIGRATIONS: Record<string, Migration> = {
  '0001-audit-events': auditEvents,
};

/**
 * Brings the database to the latest version. On PostgreSQL, Kysely's migrator takes a lock (a row
 * in `kysely_migration_lock`, in a transaction), so nodes starting at once apply each migration
 * once. SQLite has no such lock between processes sharing a file: a migration that fails because
 * another process applied it first is followed by one more pass, which then finds nothing to do.
 * A database with migrations this build does not know is refused.
 */
export async function migrateToLatest<T>(database: Kysely<T>): Promise<{ applied: string[] }> {
  const db = database as unknown as Kysely<unknown>;
  const migrator = new Migrator({ db, provider: { getMigrations: () => Promise.resolve(MIGRATIONS) } });
  let result: MigrationResultSet = await migrator.migrateToLatest();
  if (result.error !== undefined && !(db.getExecutor().adapter instanceof PostgresAdapter)) result = await migrator.migrateToLatest();
  if (result.error !== undefined) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName;
    const why = result.error instanceof Error ? result.error.message : String(result.error);
    throw new Error(failed !== undefined ? `migration ${failed} failed: ${why}` : `migrations failed: ${why}`);
  }
  return { applied: (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}
