import type { Generated } from 'kysely';

/** Tables, as Kysely sees them (one interface per table; columns in snake_case as stored). */
export interface Database {
  audit_events: AuditEventTable;
}

/** The events module's database sink (one row per security event), kept for `retention`. */
export interface AuditEventTable {
  id: Generated<number>;
  /** ISO-8601 time of the event. */
  time: string;
  /** OWASP vocabulary with args, e.g. `authz_fail:bob`. */
  event: string;
  level: string;
  description: string;
  request_id: string | null;
  client_ip: string | null;
  route: string | null;
  /** JSON of the event's data (never secrets). */
  data: string | null;
}
