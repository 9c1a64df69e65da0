/** Durations and sizes in the config are strings with a unit, parsed once at config load. */

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const DURATION_FACTORS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export const DURATION_PATTERN = DURATION.source;
export const DURATION_EXPECTED = 'a duration such as 500ms, 30s, 5m, 1h or 7d';

/** `"30s"` → 30000. Throws on anything else; the schema has already checked the pattern. */
export function parseDuration(value: string): number {
  const match = DURATION.exec(value);
  if (match === null) throw new TypeError(`invalid duration '${value}': expected ${DURATION_EXPECTED}`);
  return Number(match[1]) * DURATION_FACTORS[match[2]!]!;
}

const SIZE = /^(\d+)(B|KiB|MiB|GiB|kB|MB|GB)$/;
const SIZE_FACTORS: Record<string, number> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  kB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
};

export const SIZE_PATTERN = SIZE.source;
export const SIZE_EXPECTED = 'a size such as 512B, 64KiB, 1MiB or 1GB';

/** `"1MiB"` → 1048576. */
export function parseSize(value: string): number {
  const match = SIZE.exec(value);
  if (match === null) throw new TypeError(`invalid size '${value}': expected ${SIZE_EXPECTED}`);
  return Number(match[1]) * SIZE_FACTORS[match[2]!]!;
}
