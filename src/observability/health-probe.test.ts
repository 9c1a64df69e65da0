import { afterEach, describe, expect, it, vi } from 'vitest';
import { createHealthProbe } from './health-probe.js';

afterEach(() => vi.useRealTimers());

describe('health probe', () => {
  it('is up until a check fails or hangs past the next tick, and up again once one answers', async () => {
    vi.useFakeTimers();
    let answer: 'ok' | 'fail' | 'hang' = 'ok';
    let calls = 0;
    const probe = createHealthProbe(() => {
      calls++;
      return answer === 'ok' ? Promise.resolve() : answer === 'fail' ? Promise.reject(new Error('down')) : new Promise(() => undefined);
    }, 5000);
    expect(probe.up()).toBe(true);
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls).toBe(1);
    expect(probe.up()).toBe(true);
    answer = 'fail';
    await vi.advanceTimersByTimeAsync(5000);
    expect(probe.up()).toBe(false);
    answer = 'ok';
    await vi.advanceTimersByTimeAsync(5000);
    expect(probe.up()).toBe(true);
    answer = 'hang';
    await vi.advanceTimersByTimeAsync(5000);
    expect(probe.up()).toBe(true); // still waiting
    await vi.advanceTimersByTimeAsync(5000);
    expect(probe.up()).toBe(false); // unanswered for a whole period
    expect(calls).toBe(4); // no second check piled onto the hung one
    probe.stop();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(calls).toBe(4);
  });
});
