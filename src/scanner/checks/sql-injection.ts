import type { Check, Finding } from '../types.js';
import { brief, byType, choosePoints, fastBaseline, findingAt, beginInjection, MAX_POINTS, isNumeric, operationKey, pointLabel, probeDelay, requestWith, timing } from './inject.js';
import { lineFrom, rawIndex, readableText, sqlError } from './signatures.js';

/**
 * SQL injection, two ways. Error-based: the parameter's value with a quote and a double quote
 * appended (it breaks a string literal of either kind, and a number) — the answer carries a
 * database error message the baseline answer lacks. Time-based (blind): a bounded sleep for MySQL,
 * PostgreSQL and SQL Server, in a string or a numeric context — reported only when the sleep delays
 * the answer, the same statement with a zero sleep does not, and the sleep delays it again (see
 * probeDelay). SQLite has no sleep (its heavy `randomblob` queries load the server by an amount
 * nobody can bound), so it is found by its errors only.
 */

/** Appended to the default value: unbalances a '…' or "…" literal, and is no number. */
export const QUOTE_PAYLOAD = `'"`;

interface TimePayload {
  db: string;
  make(seconds: number): string;
}

/** Each evaluates its sleep once (a sub-select), not once per row. */
const TIME_IN_STRING: readonly TimePayload[] = [
  { db: 'MySQL/MariaDB', make: (s) => `' AND (SELECT 1 FROM (SELECT SLEEP(${s}))rs)-- -` },
  { db: 'PostgreSQL', make: (s) => `'||(SELECT '' FROM pg_sleep(${s}))||'` },
  { db: 'SQL Server', make: (s) => `';WAITFOR DELAY '0:0:${s}'--` },
];
const TIME_IN_NUMBER: readonly TimePayload[] = [
  { db: 'MySQL/MariaDB', make: (s) => ` AND (SELECT 1 FROM (SELECT SLEEP(${s}))rs)` },
  { db: 'PostgreSQL', make: (s) => ` AND 1=(SELECT 1 FROM pg_sleep(${s}))` },
  { db: 'SQL Server', make: (s) => `;WAITFOR DELAY '0:0:${s}'--` },
];

const REMEDIATION =
  'Pass every value to the database as a bound parameter (prepared statements, the ORM\'s placeholders); never build SQL by concatenating input. ' +
  'Check types at the edge (an id is an integer) and answer errors without the database\'s message.';

export const sqlInjectionCheck: Check = {
  id: 'sql-injection',
  title: 'SQL injection',
  owasp: 'API8:2023',
  description:
    `Appends ${QUOTE_PAYLOAD} to up to ${MAX_POINTS} parameters and looks for a database error message (SQLite, PostgreSQL, MySQL, SQL Server, Oracle) the baseline answer lacks; ` +
    'then bounded sleeps (MySQL SLEEP, PostgreSQL pg_sleep, SQL Server WAITFOR), reported only when a zero-sleep control is fast and the delay repeats.',
  async run(ctx) {
    const { points, prober } = beginInjection(ctx, this.id);
    const found = new Map<string, Finding>();
    for (const point of choosePoints(points, byType)) {
      const op = operationKey(point.endpoint);
      // One finding per operation and kind; an operation already shown injectable is not probed again.
      if (found.has(`${op} sqli.error`) || found.has(`${op} sqli.time`)) continue;
      const base = await prober.baseline(point);
      if (base === undefined) continue;

      const value = `${point.value}${QUOTE_PAYLOAD}`;
      const res = await prober.send(requestWith(ctx, point, value));
      const m = res === undefined ? undefined : sqlError(readableText(res.body));
      if (res !== undefined && m !== undefined && sqlError(readableText(base.body)) === undefined) {
        const index = rawIndex(res.body, m.text);
        found.set(`${op} sqli.error`, findingAt(this.id, res, {
          id: 'sqli.error',
          title: `SQL injection (${m.label} error) in '${point.name}'`,
          severity: 'high',
          confidence: 'high',
          owasp: 'API8:2023',
          detail: `${point.name}=${value} on the ${pointLabel(point)} made the answer (${res.status}) carry a ${m.label} error message (${lineFrom(readableText(res.body), m.index)}) that the answer to ${point.name}=${point.value} (${base.status}) does not: the value reaches an SQL statement unescaped.`,
          remediation: REMEDIATION,
        }, point.endpoint, { index }));
        continue;
      }

      if (prober.slowCapReached || !fastBaseline(base)) continue;
      for (const t of isNumeric(point) ? TIME_IN_NUMBER : TIME_IN_STRING) {
        if (prober.slowCapReached) break;
        const verdict = await probeDelay(prober, point, base, (s) => `${point.value}${t.make(s)}`);
        if (verdict.kind === 'none') continue;
        if (verdict.kind === 'stop') {
          ctx.logger.debug(`sql-injection: ${pointLabel(point)}, ${t.db} sleep: not reported, ${verdict.why}`);
          break;
        }
        const { first, control, repeat } = verdict;
        found.set(`${op} sqli.time`, findingAt(this.id, first, {
          id: 'sqli.time',
          title: `SQL injection (${t.db}, time-based) in '${point.name}'`,
          severity: 'high',
          confidence: 'medium',
          owasp: 'API8:2023',
          detail:
            `${point.name}=${point.value}${t.make(timing.sleepSeconds)} on the ${pointLabel(point)} delayed the answer by the ${timing.sleepSeconds} s it asks the database to sleep, twice ` +
            `(${brief(first)}; again ${brief(repeat)}), while the baseline (${brief(base)}) and the same statement sleeping 0 s (${brief(control)}) were fast: the value is executed as SQL.`,
          remediation: REMEDIATION,
        }, point.endpoint));
        break;
      }
    }
    prober.sayThrottled(this.id);
    return [...found.values()];
  },
};
