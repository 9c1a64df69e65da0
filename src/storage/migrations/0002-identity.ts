import { PostgresAdapter, sql, type Kysely, type Migration } from 'kysely';

/**
 * Users, refresh-token families and signing keys for the identity service. Times are ISO-8601
 * strings (the same in SQLite and PostgreSQL); secrets are stored only as hashes (refresh tokens)
 * or encrypted under the master key (private signing keys).
 */
export const identity: Migration = {
  async up(db: Kysely<unknown>) {
    const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
    await db.schema
      .createTable('users')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('email', 'varchar(320)', (c) => c.notNull())
      .addColumn('password_hash', 'varchar(256)', (c) => c.notNull())
      .addColumn('roles', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('created_at', 'varchar(40)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(40)', (c) => c.notNull())
      .addColumn('disabled_at', 'varchar(40)')
      .addColumn('failed_logins', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('locked_until', 'varchar(40)')
      .execute();
    // E-mail addresses are compared case-insensitively: stored lowercased, unique.
    await db.schema.createIndex('users_email').unique().on('users').column('email').execute();

    await db.schema
      .createTable('refresh_tokens')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('family_id', 'varchar(36)', (c) => c.notNull())
      .addColumn('user_id', 'varchar(36)', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('token_hash', 'varchar(128)', (c) => c.notNull())
      .addColumn('issued_at', 'varchar(40)', (c) => c.notNull())
      .addColumn('expires_at', 'varchar(40)', (c) => c.notNull())
      .addColumn('used_at', 'varchar(40)')
      .addColumn('revoked_at', 'varchar(40)')
      .execute();
    await db.schema.createIndex('refresh_tokens_hash').unique().on('refresh_tokens').column('token_hash').execute();
    await db.schema.createIndex('refresh_tokens_family').on('refresh_tokens').column('family_id').execute();
    await db.schema.createIndex('refresh_tokens_user').on('refresh_tokens').column('user_id').execute();

    await db.schema
      .createTable('signing_keys')
      .addColumn('kid', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('alg', 'varchar(16)', (c) => c.notNull())
      .addColumn('public_jwk', 'text', (c) => c.notNull())
      .addColumn('private_jwk_encrypted', 'text', (c) => c.notNull())
      .addColumn('created_at', 'varchar(40)', (c) => c.notNull())
      .addColumn('active_from', 'varchar(40)', (c) => c.notNull())
      .addColumn('retired_at', 'varchar(40)')
      .execute();
    if (!postgres) await sql`PRAGMA foreign_keys = ON`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('signing_keys').execute();
    await db.schema.dropTable('refresh_tokens').execute();
    await db.schema.dropTable('users').execute();
  },
};
