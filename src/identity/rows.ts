import { RampartError } from '../errors/problem.js';

/** Helpers for rows of the identity tables: times, JSON lists, cursors, constraint errors. */

/** Times are stored as ISO-8601 UTC strings (the same text in SQLite and PostgreSQL; they compare as text). */
export const iso = (ms: number): string => new Date(ms).toISOString();

/** Far future: an account (or its second factor) locked until an admin unlocks it. */
export const LOCKED_FOREVER = '9999-12-31T23:59:59.999Z';

/** A JSON list of strings as stored (roles, scopes); anything else reads as empty. */
export function parseList(text: string): string[] {
  try {
    const value = JSON.parse(text) as unknown;
    return Array.isArray(value) ? value.filter((r): r is string => typeof r === 'string') : [];
  } catch {
    return [];
  }
}

/** An opaque page cursor over (time, id). */
export function encodeCursor(time: string, id: string): string {
  return Buffer.from(JSON.stringify([time, id])).toString('base64url');
}

export function decodeCursor(cursor: string): [string, string] {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'string') return [value[0], value[1]];
  } catch {
    // fall through
  }
  throw new RampartError('RMP_VALIDATION_FAILED', { extensions: { errors: [{ pointer: '/query/cursor', detail: 'is not a cursor this API gave' }] } });
}

/** A unique constraint refused the row (PostgreSQL 23505, SQLite's constraint error). */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** Rows an `INSERT … ON CONFLICT DO NOTHING` inserted (Kysely reports it per dialect). */
export function numInserted(result: { numInsertedOrUpdatedRows?: bigint | undefined }): number {
  return Number(result.numInsertedOrUpdatedRows ?? 0n);
}
