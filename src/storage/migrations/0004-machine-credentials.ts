import { type Kysely, type Migration } from 'kysely';

/**
 * Credentials for programs and a second factor for people (issue 7): API keys, OAuth clients and
 * their secrets, TOTP enrolments and recovery codes, and the versioned server keys (peppers and
 * token-hash keys) that were derived from the master key and are kept encrypted under it, so a
 * master-key rotation re-encrypts them instead of invalidating every credential.
 */
export const machineCredentials: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('secret_keys')
      .addColumn('purpose', 'varchar(64)', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('value_encrypted', 'text', (c) => c.notNull())
      .addColumn('created_at', 'varchar(40)', (c) => c.notNull())
      .addPrimaryKeyConstraint('secret_keys_pk', ['purpose', 'version'])
      .execute();

    await db.schema
      .createTable('api_keys')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('user_id', 'varchar(36)', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('name', 'varchar(128)', (c) => c.notNull())
      .addColumn('prefix', 'varchar(32)', (c) => c.notNull())
      .addColumn('key_hash', 'varchar(128)', (c) => c.notNull())
      .addColumn('pepper_version', 'integer', (c) => c.notNull())
      .addColumn('scopes', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('created_by', 'varchar(300)', (c) => c.notNull())
      .addColumn('created_at', 'varchar(40)', (c) => c.notNull())
      .addColumn('expires_at', 'varchar(40)', (c) => c.notNull())
      .addColumn('last_used_at', 'varchar(40)')
      .addColumn('revoked_at', 'varchar(40)')
      .execute();
    await db.schema.createIndex('api_keys_hash').unique().on('api_keys').column('key_hash').execute();
    await db.schema.createIndex('api_keys_user').on('api_keys').columns(['user_id', 'created_at']).execute();

    await db.schema
      .createTable('oauth_clients')
      .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('name', 'varchar(128)', (c) => c.notNull())
      .addColumn('scopes', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('auth_method', 'varchar(32)', (c) => c.notNull())
      .addColumn('jwks', 'text')
      .addColumn('introspection', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('token_ttl', 'integer')
      .addColumn('created_by', 'varchar(300)', (c) => c.notNull())
      .addColumn('created_at', 'varchar(40)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(40)', (c) => c.notNull())
      .addColumn('disabled_at', 'varchar(40)')
      .execute();
    await db.schema
      .createTable('client_secrets')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('client_id', 'varchar(64)', (c) => c.notNull().references('oauth_clients.id').onDelete('cascade'))
      .addColumn('prefix', 'varchar(32)', (c) => c.notNull())
      .addColumn('secret_hash', 'varchar(128)', (c) => c.notNull())
      .addColumn('pepper_version', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'varchar(40)', (c) => c.notNull())
      .addColumn('expires_at', 'varchar(40)')
      .addColumn('revoked_at', 'varchar(40)')
      .execute();
    await db.schema.createIndex('client_secrets_hash').unique().on('client_secrets').column('secret_hash').execute();
    await db.schema.createIndex('client_secrets_client').on('client_secrets').column('client_id').execute();

    await db.schema
      .createTable('user_mfa')
      .addColumn('user_id', 'varchar(36)', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
      .addColumn('secret_encrypted', 'text', (c) => c.notNull())
      .addColumn('created_at', 'varchar(40)', (c) => c.notNull())
      .addColumn('enabled_at', 'varchar(40)')
      .addColumn('last_step', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('failed', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('locked_until', 'varchar(40)')
      .execute();
    await db.schema
      .createTable('recovery_codes')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('user_id', 'varchar(36)', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('code_hash', 'varchar(128)', (c) => c.notNull())
      .addColumn('created_at', 'varchar(40)', (c) => c.notNull())
      .addColumn('used_at', 'varchar(40)')
      .execute();
    await db.schema.createIndex('recovery_codes_hash').unique().on('recovery_codes').column('code_hash').execute();
    await db.schema.createIndex('recovery_codes_user').on('recovery_codes').column('user_id').execute();

    // Subjects whose tokens issued before a time are refused (a client disabled, deleted or cut
    // off): replayed into the revocation store at start and polled by every node, so neither a
    // restart nor a CLI without Redis loses one. Kept until every token it covers has expired.
    await db.schema
      .createTable('revoked_subjects')
      .addColumn('subject', 'varchar(300)', (c) => c.primaryKey())
      .addColumn('not_before', 'varchar(40)', (c) => c.notNull())
      .addColumn('expires_at', 'varchar(40)', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('revoked_subjects_time').on('revoked_subjects').column('not_before').execute();

    // How a session was authenticated (RFC 8176 `amr`, JSON list), carried into refreshed tokens.
    await db.schema.alterTable('refresh_families').addColumn('amr', 'varchar(64)').execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.alterTable('refresh_families').dropColumn('amr').execute();
    for (const table of ['revoked_subjects', 'recovery_codes', 'user_mfa', 'client_secrets', 'oauth_clients', 'api_keys', 'secret_keys']) await db.schema.dropTable(table).execute();
  },
};
