import type { ScanResponse } from '../http.js';
import type { Check, Finding } from '../types.js';
import { choosePoints, findingAt, beginInjection, MAX_POINTS, isStringLike, operationKey, pointLabel, requestWith, type InjectionPoint } from './inject.js';

/**
 * Regular-expression denial of service: for string parameters a server likely matches against a
 * pattern (the schema gives a `pattern` or an email/URI format, or the name says email, regex,
 * pattern, search…), values of the classic catastrophic shape, `a` × n followed by `!`, grown in
 * steps of four characters. A backtracking matcher's time doubles with each character (×16 a
 * step); an ordinary one grows linearly. The check stops at the first step whose answer takes
 * ≥ 4 × the previous step's and ≥ 300 ms more, and never sends a longer value after it. It reports
 * only when the repeated step jumps again and the previous step, sent once more after it, is still
 * fast (a server that slows every answer down after a few requests — a tarpit — is not fooled).
 * At most six values per parameter: four steps, the repeat, the control.
 */

/** The lengths tried, in order (the default value first, as step 0). */
export const REDOS_STEPS: readonly number[] = [16, 20, 24, 28];
export const JUMP_FACTOR = 4;
export const JUMP_MIN_MS = 300;

export const redosPayload = (n: number): string => `${'a'.repeat(n)}!`;

const LIKELY = /e-?mail|regex|regexp|pattern|search|query|^q$|filter|match|glob|expr|validate/i;

function rank(p: InjectionPoint): number | undefined {
  if (!isStringLike(p.schema)) return undefined;
  if (typeof p.schema?.pattern === 'string') return 0;
  if (p.schema?.format === 'email' || p.schema?.format === 'uri' || LIKELY.test(p.name)) return 1;
  return undefined;
}

const jumped = (prev: ScanResponse, next: ScanResponse): boolean => next.durationMs >= JUMP_FACTOR * prev.durationMs && next.durationMs - prev.durationMs >= JUMP_MIN_MS;

export const redosCheck: Check = {
  id: 'redos',
  title: 'Regular-expression denial of service',
  owasp: 'API4:2023',
  description: `Sends 'a'×n + '!' for n = ${REDOS_STEPS.join(', ')} to up to ${MAX_POINTS} pattern-like string parameters; stops at the first step ≥ ${JUMP_FACTOR}× and ≥ ${JUMP_MIN_MS} ms slower than the previous one, and reports it when a repeat shows the same jump and the previous step is still fast.`,
  async run(ctx) {
    const { points, prober } = beginInjection(ctx, this.id);
    const found = new Map<string, Finding>();
    for (const point of choosePoints(points, rank)) {
      const op = operationKey(point.endpoint);
      if (found.has(op)) continue;
      let prev = await prober.baseline(point);
      let prevValue = point.value;
      let prevLabel = `${point.name}=${point.value}`;
      const seen: string[] = [];
      for (const n of REDOS_STEPS) {
        if (prev === undefined) break;
        const res = await prober.send(requestWith(ctx, point, redosPayload(n)));
        if (res === undefined) break;
        seen.push(`n=${n}: ${res.durationMs} ms`);
        if (!jumped(prev, res)) {
          prev = res;
          prevValue = redosPayload(n);
          prevLabel = `n=${n}`;
          continue;
        }
        const repeat = await prober.send(requestWith(ctx, point, redosPayload(n)));
        if (repeat === undefined || !jumped(prev, repeat)) {
          ctx.logger.debug(`redos: ${pointLabel(point)}: a jump at n=${n} (${res.durationMs} ms) not repeated (${repeat?.durationMs ?? 'no answer'} ms); stopped`);
          break;
        }
        const control = await prober.send(requestWith(ctx, point, prevValue));
        if (control === undefined || !jumped(control, repeat)) {
          ctx.logger.debug(`redos: ${pointLabel(point)}: the shorter value is slow now too (${control?.durationMs ?? 'no answer'} ms); stopped`);
          break;
        }
        found.set(op, findingAt(this.id, res, {
          id: 'redos.jump',
          title: `Super-linear matching time (ReDoS) in '${point.name}'`,
          severity: 'medium',
          confidence: 'medium',
          owasp: 'API4:2023',
          detail:
            `Growing ${point.name} on the ${pointLabel(point)} four characters at a time (${seen.join(', ')}) made the answer jump from ${prev.durationMs} ms (${prevLabel}) to ${res.durationMs} ms at n=${n}, ` +
            `and again ${repeat.durationMs} ms when repeated, while ${prevLabel} sent once more was still fast (${control.durationMs} ms): a backtracking regular expression (or similar) whose time explodes with the input's length. A few longer values can stall the server.`,
          remediation:
            'Rewrite the pattern without nested or overlapping quantifiers (or use a linear-time engine such as RE2), and bound the length of the value before matching it (maxLength in the schema).',
        }, point.endpoint));
        break;
      }
    }
    prober.sayThrottled(this.id);
    return [...found.values()];
  },
};
