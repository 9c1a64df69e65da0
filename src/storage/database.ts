import { mkdirSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Storage {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  close(): Promise<void>;
}

/**
 * Opens the store named by `storage.url`: `sqlite:<path>` (relative to `baseDir`; the embedded
 * default, one node) or `postgres://…` (shared by every node). SQLite runs in WAL mode with
 * foreign keys on and a busy timeout, so readers never block the writer.
 */
export function openStorage(url: string, baseDir: string): Storage {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    const file = path === ':memory:' ? path : isAbsolute(path) ? path : resolve(baseDir, path);
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const sqlite = new SQLite(file);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
    return { db, dialect: 'sqlite', close: () => db.destroy() };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 5000 });
    // An idle client whose connection drops makes the pool emit 'error': without a listener that
    // crashes the process (regression test identity-store-outage). The pool discards the client
    // and queries fail (and are answered 503) until the database is back.
    pool.on('error', () => undefined);
    // A client in use (a transaction between two statements, say) whose connection drops emits
    // 'error' on itself, where the pool no longer listens: without this the process crashes
    // (regression test identity-store-outage). Its next statement fails, and the answer is 503.
    pool.on('connect', (client) => {
      client.on('error', () => undefined);
    });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return { db, dialect: 'postgres', close: () => db.destroy() };
  }
  throw new Error(`storage url must start with sqlite: or postgres://, got '${url.replace(/\/\/[^@]*@/, '//***@')}'`);
}
