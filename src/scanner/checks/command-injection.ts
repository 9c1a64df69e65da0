import type { Check, Finding } from '../types.js';
import { brief, choosePoints, fastBaseline, findingAt, beginInjection, MAX_POINTS, isStringLike, operationKey, pointLabel, probeDelay, timing, type InjectionPoint } from './inject.js';

/**
 * OS command injection, time-based: the parameter's value followed by a shell separator and a
 * bounded `sleep`. Reported only when the sleep delays the answer, the same payload sleeping 0 s
 * does not, and the sleep delays it again (see probeDelay). Only string parameters: a number
 * that reaches a shell is validated as one far more often than a host name or a file name.
 */

/** `;`, a pipe, `$(…)` (also inside double quotes), and a single-quoted context closed and reopened. */
export const COMMAND_PAYLOADS: readonly { label: string; make(seconds: number): string }[] = [
  { label: ';sleep', make: (s) => `;sleep ${s}` },
  { label: '|sleep', make: (s) => `|sleep ${s}` },
  { label: '$(sleep)', make: (s) => `$(sleep ${s})` },
  { label: "';sleep;'", make: (s) => `';sleep ${s};'` },
];

/** Names that usually end up on a command line: probed first. */
const LIKELY = /host|ip|addr|domain|server|target|cmd|command|exec|run|file|path|dir|folder|url|uri|name|arg|opt/i;

function rank(p: InjectionPoint): number | undefined {
  if (!isStringLike(p.schema)) return undefined;
  return LIKELY.test(p.name) ? 0 : 1;
}

export const commandInjectionCheck: Check = {
  id: 'command-injection',
  title: 'OS command injection',
  owasp: 'API8:2023',
  description: `Appends ${COMMAND_PAYLOADS.map((p) => `'${p.make(2)}'`).join(', ')} to up to ${MAX_POINTS} string parameters; reported only when the answer is delayed by the sleep, a zero-sleep control is fast and the delay repeats.`,
  async run(ctx) {
    const { points, prober } = beginInjection(ctx, this.id);
    const found = new Map<string, Finding>();
    for (const point of choosePoints(points, rank)) {
      if (prober.slowCapReached) break;
      const op = operationKey(point.endpoint);
      if (found.has(op)) continue;
      const base = await prober.baseline(point);
      if (base === undefined || !fastBaseline(base)) continue;
      for (const payload of COMMAND_PAYLOADS) {
        if (prober.slowCapReached) break;
        const verdict = await probeDelay(prober, point, base, (s) => `${point.value}${payload.make(s)}`);
        if (verdict.kind === 'none') continue;
        if (verdict.kind === 'stop') {
          ctx.logger.debug(`command-injection: ${pointLabel(point)}, ${payload.label}: not reported, ${verdict.why}`);
          break;
        }
        const { first, control, repeat } = verdict;
        found.set(op, findingAt(this.id, first, {
          id: 'cmdi.time',
          title: `OS command injection (time-based) in '${point.name}'`,
          severity: 'high',
          confidence: 'medium',
          owasp: 'API8:2023',
          detail:
            `${point.name}=${point.value}${payload.make(timing.sleepSeconds)} on the ${pointLabel(point)} delayed the answer by the ${timing.sleepSeconds} s the shell was asked to sleep, twice ` +
            `(${brief(first)}; again ${brief(repeat)}), while the baseline (${brief(base)}) and the same payload sleeping 0 s (${brief(control)}) were fast: the value runs in a shell.`,
          remediation:
            'Never pass input to a shell: call the program directly with an argument list (execFile/spawn without a shell), or use a library instead of a command. ' +
            'Validate the value against a strict allowlist (a host name, an IP address) before it is used.',
        }, point.endpoint));
        break;
      }
    }
    prober.sayThrottled(this.id);
    return [...found.values()];
  },
};
