import { randomUUID } from 'node:crypto';
import { PostgresIntrospector } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openStorage } from '../../src/storage/database.js';
import { migrateToLatest } from '../../src/storage/migrate.js';
import { PG_URL, postgresAvailable } from '../helpers/identity.js';

/**
 * migrate-races-concurrent-ddl: Kysely's migrator checks for its own tables by listing every table
 * of every schema with catalog functions that fail when a table or schema elsewhere in the database
 * is dropped at that moment. CI saw "column "used_by" of relation "invites" does not exist" at a
 * gateway start while other suites dropped their schemas. Migrating now succeeds while another
 * session creates and drops schemas, and an up-to-date database is not listed at all.
 */
const pgUp = await postgresAvailable();

async function run(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/** Creates a schema, migrates it (`times` times), drops it. */
async function cycle(prefix: string, times = 1): Promise<void> {
  const schema = `${prefix}_${randomUUID().replace(/-/g, '')}`;
  await run(`CREATE SCHEMA "${schema}"`);
  const storage = openStorage(`${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`, '/');
  try {
    for (let i = 0; i < times; i++) await migrateToLatest(storage.db);
  } finally {
    await storage.close();
    await run(`DROP SCHEMA "${schema}" CASCADE`);
  }
}

describe.skipIf(!pgUp)('migrate-races-concurrent-ddl', () => {
  it('migrates while another session creates and drops schemas with the same tables', async () => {
    const failures: string[] = [];
    const loop = async (prefix: string) => {
      for (let i = 0; i < 12; i++) await cycle(prefix).catch((error: unknown) => failures.push((error as Error).message));
    };
    await Promise.all([loop('rampart_race_a'), loop('rampart_race_b')]);
    expect(failures).toEqual([]);
  }, 120_000);

  it('an up-to-date database is not listed again (no catalog-wide introspection)', async () => {
    const schema = `rampart_race_c_${randomUUID().replace(/-/g, '')}`;
    await run(`CREATE SCHEMA "${schema}"`);
    const storage = openStorage(`${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`, '/');
    try {
      expect((await migrateToLatest(storage.db)).applied.length).toBeGreaterThan(0);
      // Each `db.introspection` is a new introspector: count calls on the class.
      const original = PostgresIntrospector.prototype.getTables;
      let listed = 0;
      PostgresIntrospector.prototype.getTables = function (this: PostgresIntrospector, options) {
        listed += 1;
        return original.call(this, options);
      };
      try {
        expect(await migrateToLatest(storage.db)).toEqual({ applied: [] });
      } finally {
        PostgresIntrospector.prototype.getTables = original;
      }
      expect(listed).toBe(0);
    } finally {
      await storage.close();
      await run(`DROP SCHEMA "${schema}" CASCADE`);
    }
  });
});
