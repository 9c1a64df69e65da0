import { afterEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { openStorage, type Storage } from '../../src/storage/database.js';
import { migrateToLatest } from '../../src/storage/migrate.js';
import { freshStorage, postgresAvailable } from '../helpers/identity.js';

/**
 * Bug: Kysely's migrator looked for its bookkeeping tables in every schema. With a second Rampart
 * database in a sibling schema of the same PostgreSQL database, the second migration took the
 * first one's `kysely_migration_lock` for its own and failed ("relation does not exist").
 */
const pgUp = await postgresAvailable();
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe.skipIf(!pgUp)('migrations-see-sibling-schema', () => {
  it('migrates two databases in sibling schemas of one PostgreSQL database, each completely', async () => {
    const storages: Storage[] = [];
    for (let i = 0; i < 2; i++) {
      const fresh = await freshStorage('postgres');
      cleanup.push(fresh.drop);
      const storage = openStorage(fresh.url, '/');
      cleanup.push(() => storage.close());
      storages.push(storage);
      const { applied } = await migrateToLatest(storage.db);
      expect(applied).toContain('0003-identity-sessions');
    }
    for (const storage of storages) {
      const { rows } = await sql<{ n: string }>`select count(*) as n from information_schema.tables where table_schema = current_schema() and table_name in ('users', 'kysely_migration', 'kysely_migration_lock')`.execute(storage.db);
      expect(Number(rows[0]!.n)).toBe(3);
    }
  });
});
