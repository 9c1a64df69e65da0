import { Type, type TSchema, type TUnsafe } from '@sinclair/typebox';
import { DURATION_EXPECTED, DURATION_PATTERN, SIZE_EXPECTED, SIZE_PATTERN } from './units.js';

/**
 * Schema helpers shared by the core schema and every policy schema. `x-expected` is the phrase
 * error messages use for "what was expected", so a user reads "expected a duration such as 30s"
 * rather than a regular expression.
 */

export function StringEnum<const T extends readonly string[]>(
  values: T,
  options: { description: string; default?: T[number] },
): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

export function Duration(options: { description: string; default?: string }) {
  return Type.String({ pattern: DURATION_PATTERN, 'x-expected': DURATION_EXPECTED, ...options });
}

export function Size(options: { description: string; default?: string }) {
  return Type.String({ pattern: SIZE_PATTERN, 'x-expected': SIZE_EXPECTED, ...options });
}

/** An object that refuses unknown keys and, when every field has a default, defaults to `{}`. */
export function Strict<T extends Record<string, TSchema>>(
  properties: T,
  options: { description: string; default?: unknown },
) {
  return Type.Object(properties, { additionalProperties: false, ...options });
}
