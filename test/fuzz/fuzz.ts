import type { Parameters } from 'fast-check';

/**
 * Settings shared by the fuzz suites (test/fuzz/*.fuzz.test.ts).
 *
 * - CI (`npm test`): every property runs the small, fixed number of cases its suite names, from
 *   the fixed seed below, so a run is repeatable and bounded in time.
 * - `FUZZ_RUNS=N`: N cases per property instead (`npm run fuzz` sets 20 000).
 * - `FUZZ_SEED=N`: another seed; `FUZZ_SEED=random` draws one and prints it.
 * - `FUZZ_PATH=…`: with the seed, replays one failing case (fast-check prints both when a
 *   property fails: `{ seed: 123, path: "45:2:0" }`). Run only the failing test then (`-t`):
 *   a path belongs to one property.
 * - `FUZZ_TIMEOUT_MS=N`: the per-test timeout (default 60 s, or 2 h when FUZZ_RUNS is set).
 *
 * To reproduce a failure: `FUZZ_SEED=<seed> FUZZ_PATH=<path> npx vitest run test/fuzz/<suite> -t '<test name>'`.
 */

/** The seed CI uses (any fixed number would do: this is the issue the suites come from). */
export const CI_SEED = 11;

function integer(name: string, min: number): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}, got '${raw}'`);
  return n;
}

const runs = integer('FUZZ_RUNS', 1);

/** A long run (`FUZZ_RUNS` set): suites may print what they did. */
export const LONG_RUN = runs !== undefined;

export const SEED: number =
  process.env.FUZZ_SEED === 'random' ? (Math.random() * 0x7fffffff) | 0 : (integer('FUZZ_SEED', -0x80000000) ?? CI_SEED);

const path = process.env.FUZZ_PATH === undefined || process.env.FUZZ_PATH === '' ? undefined : process.env.FUZZ_PATH;

/** Per-test timeout for `it(name, fn, FUZZ_TIMEOUT)`: a long run must not be cut by vitest's 30 s. */
export const FUZZ_TIMEOUT = integer('FUZZ_TIMEOUT_MS', 1) ?? (LONG_RUN ? 7_200_000 : 60_000);

if (process.env.FUZZ_SEED === 'random' || LONG_RUN) {
  console.log(`fuzz: seed ${SEED}, ${runs ?? 'CI'} runs per property (FUZZ_SEED=${SEED} reproduces)`);
}

/**
 * fast-check parameters for one property: `ciRuns` cases in CI, `FUZZ_RUNS` in a long run. Cases
 * that go over HTTP pass `endOnFailure` (shrinking would replay hundreds of requests; the seed and
 * path still reproduce the first failure).
 */
export function fuzz<T>(ciRuns: number, extra: Parameters<T> = {}): Parameters<T> {
  return { seed: SEED, numRuns: runs ?? ciRuns, ...(path !== undefined ? { path } : {}), ...extra };
}

/** Every object reachable from `value` is frozen (aliases and cycles visited once). */
export function assertDeepFrozen(value: unknown, where = 'config', seen = new Set<object>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (!Object.isFrozen(value)) throw new Error(`${where} is not frozen`);
  for (const key of Reflect.ownKeys(value)) {
    assertDeepFrozen((value as Record<PropertyKey, unknown>)[key], `${where}.${String(key)}`, seen);
  }
}
