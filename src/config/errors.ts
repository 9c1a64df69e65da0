/** One problem found in a config: where it is, which key, and what was expected. */
export interface ConfigIssue {
  file: string;
  /** 1-based; 0 when the config did not come from a file. */
  line: number;
  column: number;
  /** Dotted path of the offending key, e.g. `routes[0].match.path`. */
  path: string;
  message: string;
}

export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}:${issue.column}` : issue.file;
  return issue.path === '' ? `${where}: ${issue.message}` : `${where}: ${issue.path}: ${issue.message}`;
}

/** Thrown when a config is invalid; carries every issue found, sorted by position. */
export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: ConfigIssue[]) {
    const sorted = [...issues].sort((a, b) => a.line - b.line || a.column - b.column || a.path.localeCompare(b.path));
    super(
      `invalid config: ${sorted.length} error${sorted.length === 1 ? '' : 's'}\n` + sorted.map((i) => '  ' + formatIssue(i)).join('\n'),
    );
    this.name = 'ConfigError';
    this.issues = sorted;
  }
}

/** A config file that cannot be read at all (missing, unreadable): one line, no positions. */
export class ConfigFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigFileError';
  }
}

export type ConfigPath = readonly (string | number)[];

export function formatPath(path: ConfigPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}

/** Closest candidate by edit distance, when close enough to be a likely typo. */
export function didYouMean(input: string, candidates: readonly string[] | Iterable<string>): string | undefined {
  candidates = [...candidates];
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(input.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  if (best === undefined) return undefined;
  const prefixed = [...candidates].filter((c) => input.length >= 3 && c.toLowerCase().startsWith(input.toLowerCase()));
  if (prefixed.length === 1) return prefixed[0];
  return bestDistance <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  if (a.length > 64 || b.length > 64) return Infinity;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
