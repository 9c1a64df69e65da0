import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openStorage, type Storage } from './database.js';
import { MIGRATIONS, migrateToLatest } from './migrate.js';

/**
 * The storage layer against both backends: the embedded SQLite file and the shared PostgreSQL
 * (127.0.0.1:5432, database `test`, each test in a schema of its own).
 */

const required = process.env.RAMPART_REQUIRE_SERVICES === '1';
const PG = 'postgres://postgres@127.0.0.1:5432/test';
const pgUp = required || (await new pg.Client({ connectionString: PG, connectionTimeoutMillis: 2000 }).connect().then(
  () => true,
  () => (console.warn('SKIPPED: PostgreSQL is not running on 127.0.0.1:5432; its storage tests skip (set RAMPART_REQUIRE_SERVICES=1 to fail instead)'), false),
));

const open: Storage[] = [];
const schemas: string[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  if (schemas.length > 0) {
    const client = new pg.Client({ connectionString: PG });
    await client.connect();
    for (const schema of schemas.splice(0)) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
  }
});

async function backend(kind: 'sqlite' | 'postgres'): Promise<() => Storage> {
  if (kind === 'sqlite') {
    const file = join(mkdtempSync(join(tmpdir(), 'rampart-db-')), 'rampart.db');
    return () => {
      const s = openStorage(`sqlite:${file}`, '/');
      open.push(s);
      return s;
    };
  }
  const schema = `rampart_test_${randomUUID().replace(/-/g, '')}`;
  schemas.push(schema);
  const client = new pg.Client({ connectionString: PG });
  await client.connect();
  await client.query(`CREATE SCHEMA "${schema}"`);
  await client.end();
  return () => {
    const s = openStorage(`${PG}?options=${encodeURIComponent(`-c search_path=${schema}`)}`, '/');
    open.push(s);
    return s;
  };
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe.skipIf(kind === 'postgres' && !pgUp)(`storage on ${kind}`, () => {
    it('migrates to the latest version once, then writes and reads the audit table', async () => {
      const make = await backend(kind);
      const s = make();
      expect(await migrateToLatest(s.db)).toEqual({ applied: Object.keys(MIGRATIONS) });
      expect(await migrateToLatest(s.db)).toEqual({ applied: [] });
      await s.db.insertInto('audit_events').values({ time: new Date().toISOString(), event: 'authz_fail:bob', level: 'WARN', description: 'denied', request_id: 'r1', client_ip: '10.0.0.1', route: 'notes', data: '{"reason":"x"}' }).execute();
      const rows = await s.db.selectFrom('audit_events').selectAll().execute();
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ event: 'authz_fail:bob', level: 'WARN', route: 'notes' });
      expect(Number(rows[0]!.id)).toBeGreaterThan(0);
    });

    it('the identity tables: unique lowercased e-mail, refresh tokens tied to their user (cascade)', async () => {
      const make = await backend(kind);
      const s = make();
      await migrateToLatest(s.db);
      const now = new Date().toISOString();
      await s.db.insertInto('users').values({ id: 'u1', email: 'alice@example.com', password_hash: '$argon2id$…', created_at: now, updated_at: now, disabled_at: null, locked_until: null }).execute();
      await expect(s.db.insertInto('users').values({ id: 'u2', email: 'alice@example.com', password_hash: 'x', created_at: now, updated_at: now, disabled_at: null, locked_until: null }).execute()).rejects.toThrow();
      await s.db.insertInto('refresh_tokens').values({ id: 't1', family_id: 'f1', user_id: 'u1', token_hash: 'h1', issued_at: now, expires_at: now, used_at: null, revoked_at: null }).execute();
      await expect(s.db.insertInto('refresh_tokens').values({ id: 't2', family_id: 'f1', user_id: 'nobody', token_hash: 'h2', issued_at: now, expires_at: now, used_at: null, revoked_at: null }).execute()).rejects.toThrow();
      await s.db.deleteFrom('users').where('id', '=', 'u1').execute();
      expect(await s.db.selectFrom('refresh_tokens').selectAll().execute()).toEqual([]);
      const user = await s.db.selectFrom('users').selectAll().execute();
      expect(user).toEqual([]);
    });

    it('two nodes migrating at once apply each migration exactly once', async () => {
      const make = await backend(kind);
      const [a, b] = [make(), make()];
      const results = await Promise.all([migrateToLatest(a.db), migrateToLatest(b.db)]);
      expect(results.flatMap((r) => r.applied).sort()).toEqual(Object.keys(MIGRATIONS));
    });
  });
}

it('refuses a storage url it does not know, without echoing a password', () => {
  expect(() => openStorage('mysql://user:secret@db/x', '/')).toThrow("storage url must start with sqlite: or postgres://, got 'mysql://***@db/x'");
});
