import { type Kysely, type Migration } from 'kysely';

/**
 * What the login workflow needs beyond 0002: refresh-token families (a login session, revoked as
 * a whole), successors for rotation, per-user token not-before and forced password change,
 * invitations, persisted access-token revocations (replayed into the revocation store at start),
 * emergency key revocation, and actor/subject columns on the audit table.
 */
export const identitySessions: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('users').addColumn('tokens_not_before', 'varchar(40)').execute();
    await db.schema.alterTable('users').addColumn('password_change_required', 'integer', (c) => c.notNull().defaultTo(0)).execute();

    await db.schema
      .createTable('refresh_families')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('user_id', 'varchar(36)', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('client_id', 'varchar(128)', (c) => c.notNull())
      .addColumn('created_at', 'varchar(40)', (c) => c.notNull())
      .addColumn('expires_at', 'varchar(40)', (c) => c.notNull())
      .addColumn('last_used_at', 'varchar(40)', (c) => c.notNull())
      .addColumn('revoked_at', 'varchar(40)')
      .addColumn('revoked_reason', 'varchar(40)')
      .addColumn('client_ip', 'varchar(64)')
      .addColumn('user_agent', 'varchar(256)')
      .execute();
    await db.schema.createIndex('refresh_families_user').on('refresh_families').column('user_id').execute();
    await db.schema.alterTable('refresh_tokens').addColumn('parent_id', 'varchar(36)').execute();

    await db.schema
      .createTable('invites')
      .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('token_hash', 'varchar(128)', (c) => c.notNull())
      .addColumn('email', 'varchar(320)')
      .addColumn('roles', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('created_by', 'varchar(36)')
      .addColumn('created_at', 'varchar(40)', (c) => c.notNull())
      .addColumn('expires_at', 'varchar(40)', (c) => c.notNull())
      .addColumn('used_at', 'varchar(40)')
      .addColumn('used_by', 'varchar(36)')
      .execute();
    await db.schema.createIndex('invites_hash').unique().on('invites').column('token_hash').execute();

    await db.schema
      .createTable('revoked_tokens')
      .addColumn('jti', 'varchar(128)', (c) => c.primaryKey())
      .addColumn('expires_at', 'varchar(40)', (c) => c.notNull())
      .execute();
    // Every access token issued, by session: revoking a session denylists its live access tokens.
    await db.schema
      .createTable('access_tokens')
      .addColumn('jti', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('family_id', 'varchar(36)', (c) => c.notNull())
      .addColumn('user_id', 'varchar(36)', (c) => c.notNull())
      .addColumn('expires_at', 'varchar(40)', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('access_tokens_family').on('access_tokens').column('family_id').execute();
    await db.schema.alterTable('signing_keys').addColumn('revoked_at', 'varchar(40)').execute();

    await db.schema.alterTable('audit_events').addColumn('type', 'varchar(64)').execute();
    await db.schema.alterTable('audit_events').addColumn('actor', 'varchar(300)').execute();
    await db.schema.alterTable('audit_events').addColumn('subject', 'varchar(300)').execute();
    await db.schema.createIndex('audit_events_type').on('audit_events').columns(['type', 'id']).execute();
    await db.schema.createIndex('audit_events_subject').on('audit_events').columns(['subject', 'id']).execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropIndex('audit_events_subject').execute();
    await db.schema.dropIndex('audit_events_type').execute();
    for (const c of ['subject', 'actor', 'type']) await db.schema.alterTable('audit_events').dropColumn(c).execute();
    await db.schema.alterTable('signing_keys').dropColumn('revoked_at').execute();
    await db.schema.dropTable('access_tokens').execute();
    await db.schema.dropTable('revoked_tokens').execute();
    await db.schema.dropTable('invites').execute();
    await db.schema.alterTable('refresh_tokens').dropColumn('parent_id').execute();
    await db.schema.dropTable('refresh_families').execute();
    await db.schema.alterTable('users').dropColumn('password_change_required').execute();
    await db.schema.alterTable('users').dropColumn('tokens_not_before').execute();
  },
};
