/**
 * A walk over every object and array of a parsed JSON value, breadth first and without recursion
 * (a deeply nested answer cannot overflow the stack), for the response filters. The queue is
 * three module-level arrays reused by every walk, so a walk allocates nothing of its own; each
 * entry remembers its parent and key, so the JSON path of a finding is built only when there is
 * one. Walks are synchronous and never nested.
 */

const nodes: object[] = [];
const parents: number[] = [];
const keys: (string | number)[] = [];

/**
 * Calls `visit` for `root` and every object or array `visit` enqueues (with `enqueue`), in
 * breadth-first order; `index` identifies the node for `enqueue` and `pathOf`.
 */
export function walkJson(root: unknown, visit: (node: Record<string, unknown> | unknown[], index: number) => void): void {
  if (root === null || typeof root !== 'object') return;
  nodes.push(root);
  parents.push(-1);
  keys.push('');
  try {
    for (let i = 0; i < nodes.length; i++) visit(nodes[i] as Record<string, unknown> | unknown[], i);
  } finally {
    // The queue must not keep an answer alive after the walk.
    nodes.length = 0;
    parents.length = 0;
    keys.length = 0;
  }
}

/** Queues `child`, found under `key` of the node at `parent`, for the current walk. */
export function enqueue(child: object, parent: number, key: string | number): void {
  nodes.push(child);
  parents.push(parent);
  keys.push(key);
}

const IDENTIFIER = /^[A-Za-z_$][\w$]{0,63}$/;
const MAX_PATH = 256;

/**
 * The JSON path (`$.users[0].password`) of `key` in the node at `index`, during a walk. Keys that
 * are not plain identifiers are quoted and cut to 64 characters; the path to 256.
 */
export function pathOf(index: number, key: string | number): string {
  let path = pathSegment(key);
  for (let i = index; i > 0 && path.length < MAX_PATH; i = parents[i]!) path = pathSegment(keys[i]!) + path;
  path = `$${path}`;
  return path.length > MAX_PATH ? `${path.slice(0, MAX_PATH - 1)}…` : path;
}

/** One step of a JSON path: `[0]`, `.name`, or `["odd key"]` (cut to 64 characters). */
export function pathSegment(key: string | number): string {
  if (typeof key === 'number') return `[${key}]`;
  return IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key.slice(0, 64))}]`;
}

/** Paths for an event's data: the first few, joined, with how many more there were. */
export function summarizePaths(paths: readonly string[], max = 10): string {
  const shown = paths.slice(0, max).join(', ');
  return paths.length > max ? `${shown} (+${paths.length - max} more)` : shown;
}
