/**
 * A store's health for `rampart_store_up`: `check` runs every `intervalMs` on an unref'd timer
 * (never on the request path), and the store counts as up while the last check answered. A check
 * still unanswered at the next tick counts as down (a hung connection is not a healthy one).
 */
export interface HealthProbe {
  up(): boolean;
  stop(): void;
}

export function createHealthProbe(check: () => Promise<unknown>, intervalMs: number): HealthProbe {
  let up = true; // the store just answered at start (migrations, keys)
  let pending = false;
  const timer = setInterval(() => {
    if (pending) {
      up = false;
      return;
    }
    pending = true;
    check().then(
      () => {
        up = true;
        pending = false;
      },
      () => {
        up = false;
        pending = false;
      },
    );
  }, intervalMs);
  timer.unref();
  return {
    up: () => up,
    stop: () => clearInterval(timer),
  };
}
