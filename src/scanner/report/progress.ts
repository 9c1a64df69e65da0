import type { Progress } from '../runner.js';

const WIDTH = 20;
/** Carriage return, then erase to the end of the line: the next frame (or nothing) takes its place. */
const CLEAR = '\r\x1b[K';

/** `[#####---------------] 5/18 checks · 123 requests · injection` */
export function progressFrame(p: Progress): string {
  const filled = p.total === 0 ? WIDTH : Math.round((p.done / p.total) * WIDTH);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}]`;
  return `${bar} ${p.done}/${p.total} checks · ${p.requests} requests · ${p.check ?? 'done'}`;
}

export interface ProgressBar {
  /** The runner's progress hook: redraws the bar in place. */
  update(p: Progress): void;
  /** Writes a whole line (a log message) above the bar: the bar is cleared, the line written, the bar drawn again. */
  line(write: () => void): void;
  /** Removes the bar for good (before the report prints). */
  clear(): void;
}

/** A bar on a terminal (stderr is a TTY): each frame overwrites the last with `\r`; `write` adds no newline. */
export function createProgressBar(write: (text: string) => void): ProgressBar {
  let frame: string | undefined;
  let done = false;
  return {
    update(p) {
      if (done) return;
      frame = progressFrame(p);
      write(CLEAR + frame);
    },
    line(print) {
      if (frame === undefined || done) return print();
      write(CLEAR);
      print();
      write(frame);
    },
    clear() {
      if (frame !== undefined && !done) write(CLEAR);
      done = true;
    },
  };
}
