import type { Severity } from '../types.js';

/**
 * Text signatures the injection and sensitive-data checks decide on: database error messages,
 * stack traces, framework debug and error pages, secrets of well-known formats, password hashes
 * and card numbers. Pure functions, no I/O. Each is specific on purpose: a check reports only on a
 * clear marker, so a signature that could match ordinary data does not belong here.
 *
 * They run over hostile text (every answer the scan stored, up to its body limit), and Node's
 * regular expressions backtrack: no signature may take more than linear time. So every repetition
 * is bounded (`{1,200}`, not `+`) wherever what follows could fail, `[ \t]` (never `\s`, which
 * matches a newline) stands for the blanks inside a line — with the `m` flag, `^\s*` rescans the
 * rest of the text from every line start — and no two neighbouring quantifiers can match the same
 * characters. signatures.test.ts times every signature over hostile bodies.
 */

export interface Match {
  /** What was recognised, for the finding's detail (`PostgreSQL`, `Node.js`). */
  label: string;
  /** The matched text. */
  text: string;
  index: number;
}

function first(text: string, table: readonly { label: string; re: RegExp }[]): Match | undefined {
  let best: Match | undefined;
  for (const { label, re } of table) {
    const m = re.exec(text);
    if (m !== null && (best === undefined || m.index < best.index)) best = { label, text: m[0], index: m.index };
  }
  return best;
}

/** Error messages of database drivers and servers (what a quote in the wrong place produces). */
const SQL_ERRORS: readonly { label: string; re: RegExp }[] = [
  { label: 'SQLite', re: /SQLITE_ERROR|SQLITE_[A-Z_]{1,40}: |sqlite3\.OperationalError|SQLite3?::\w{1,60}Exception|System\.Data\.SQLite|SQLiteException|unrecognized token: \\?"|near \\?"[^"\n]{0,80}\\?": syntax error|no such (?:table|column): [\w.]{1,200}/ },
  { label: 'PostgreSQL', re: /syntax error at or near \\?"|unterminated quoted string at or near \\?"|PG::\w{1,60}Error|org\.postgresql\.util\.PSQLException|psycopg2?\.(?:errors\.)?\w{0,60}Error\b|invalid input syntax for (?:type )?\w{1,60}|(?:column|relation) \\?"[^"\n\\]{1,200}\\?" does not exist/ },
  { label: 'MySQL/MariaDB', re: /You have an error in your SQL syntax|check the manual that corresponds to your (?:MySQL|MariaDB) server version|Unknown column '[^'\n]{1,200}' in '|com\.mysql\.(?:cj\.)?jdbc|MySqlException|ER_PARSE_ERROR|ER_BAD_FIELD_ERROR|Warning: mysqli?_\w{1,60}\(/ },
  { label: 'SQL Server', re: /Unclosed quotation mark after the character string|Incorrect syntax near '|Microsoft OLE DB Provider for SQL Server|\[Microsoft\]\[ODBC SQL Server Driver\]|System\.Data\.SqlClient\.SqlException|Microsoft\.Data\.SqlClient|com\.microsoft\.sqlserver\.jdbc/ },
  { label: 'Oracle', re: /\bORA-\d{5}\b|quoted string not properly terminated|oracle\.jdbc\.|\bPLS-\d{5}\b/ },
  { label: 'SQL (driver or ORM)', re: /SQLSTATE\[\w{1,10}\]|SequelizeDatabaseError|QueryFailedError: |PrismaClient(?:Known|Unknown)RequestError/ },
];

export function sqlError(text: string): Match | undefined {
  return first(text, SQL_ERRORS);
}

/** A stack trace: two frames of one runtime, or a runtime's own trace header with a frame. */
export function stackTrace(text: string): Match | undefined {
  /** The first of `min` frames matching `re` (a line pattern: `^[ \t]*…`, run with the `m` flag), else undefined. */
  const frames = (re: RegExp, min: number): RegExpExecArray | undefined => {
    let first: RegExpExecArray | undefined;
    let n = 0;
    for (const m of text.matchAll(new RegExp(re.source, 'gm'))) {
      first ??= m as RegExpExecArray;
      if (++n >= min) return first;
    }
    return undefined;
  };
  const found: Match[] = [];
  const push = (label: string, m: RegExpExecArray | null | undefined) => {
    if (m) found.push({ label, text: m[0], index: m.index });
  };
  push('Python', /Traceback \(most recent call last\):[ \t]*\r?\n[ \t]{1,40}File "[^"\n]{1,500}", line \d+/.exec(text));
  push('Go', /goroutine \d{1,12} \[[\w ,]{1,100}\]:\r?\n/.exec(text));
  push('PHP', /(?:PHP (?:Fatal error|Parse error|Warning):|<b>(?:Fatal error|Parse error|Warning|Notice)<\/b>:)[^\n]{0,300}? in (?:<b>)?[^\s<]{1,300}\.php(?:<\/b>)? on line (?:<b>)?\d+|Stack trace:[ \t]*\r?\n#0 [^\n]{1,500}\.php\(\d+\)/.exec(text));
  push('Java', frames(/^[ \t]*at [\w$]{1,200}(?:\.[\w$<>]{1,200}){1,40}\((?:[\w$]{1,200}\.(?:java|kt|scala|groovy):\d{1,7}|Native Method|Unknown Source)\)/, 2));
  push('.NET', frames(/^[ \t]*at [\w.`<>[\],]{1,300}\([^)\n]{0,300}\) in [^\n]{1,300}:line \d{1,7}/, 1) ?? (/\bSystem\.\w{1,100}Exception\b/.test(text) ? frames(/^[ \t]*at [\w.`<>[\],]{1,300}\([^)\n]{0,300}\)[ \t\r]*$/, 2) : undefined));
  push('Node.js', frames(/^[ \t]*at (?:[^\n()]{1,200} \()?(?:\/|[A-Za-z]:\\|file:\/\/|node:)[^\n)]{0,300}:\d{1,7}(?::\d{1,7})?(?:\)|(?=[\s"',]|$))/, 2));
  push('Ruby', frames(/^[ \t]*(?:[\w-]{1,100} \([\d.]{1,20}\) )?[\w/.-]{1,300}\.rb:\d{1,7}:in [`'][^'\n]{1,300}'/, 2));
  return found.sort((a, b) => a.index - b.index)[0];
}

export interface Banner extends Match {
  severity: Severity;
}

/**
 * Framework debug pages (any status: they are as bad on a 200) and default error pages naming
 * the software or its version (judged on error answers only: a 200 may be documentation).
 */
const DEBUG_PAGES: readonly { label: string; re: RegExp; severity: Severity }[] = [
  { label: 'Werkzeug interactive debugger (a console that runs code, guarded by a PIN at best)', re: /Werkzeug Debugger|The debugger caught an exception in your WSGI application|\?__debugger__=yes/, severity: 'high' },
  { label: 'Django debug page (DEBUG = True)', re: /You're seeing this error because you have <code>DEBUG = True<\/code>|DEBUG = True<\/code> in your Django settings file/, severity: 'medium' },
  { label: 'Laravel Ignition / Whoops debug page', re: /spatie\/laravel-ignition|facade\/ignition|Whoops\\(?:Run|Handler)|<div class="Whoops container">/, severity: 'medium' },
  { label: 'Rails exception page', re: /Action Controller: Exception caught|<h2[^<>]{0,200}>Rails\.root: /, severity: 'medium' },
  { label: 'ASP.NET detailed error page', re: /Server Error in '\/[^'\n]{0,200}' Application|ASP\.NET is configured to show verbose error messages/, severity: 'medium' },
  { label: 'Symfony debug page', re: /Symfony\\Component\\ErrorHandler\\|sf-toolbar|<title>[^<]{0,200}\(500 Internal Server Error\)<\/title>\s{0,100}<meta[^<>]{1,500}Symfony/, severity: 'medium' },
];
const ERROR_PAGES: readonly { label: string; re: RegExp }[] = [
  { label: 'Spring Boot Whitelabel error page', re: /Whitelabel Error Page/ },
  { label: 'Express default error page', re: /<pre>Cannot (?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) \/[^<\n]{0,300}<\/pre>/ },
  { label: 'Apache Tomcat', re: /Apache Tomcat\/\d{1,5}(?:\.\d{1,5}){1,5}/ },
  { label: 'Apache httpd', re: /<address>Apache\/\d{1,5}(?:\.\d{1,5}){1,5}\b[^<]{0,200}Server at [^<]{1,200}<\/address>/ },
  { label: 'nginx', re: /<center>nginx\/\d{1,5}(?:\.\d{1,5}){1,5}<\/center>/ },
  { label: 'Microsoft IIS', re: /IIS \d{1,3}\.\d{1,3} Detailed Error|Microsoft-IIS\/\d{1,3}\.\d{1,3}/ },
  { label: 'Jetty', re: /Powered by Jetty:\/\/ ?\d{1,5}(?:\.\d{1,5}){1,5}/ },
];

export function banners(text: string, status: number): Banner[] {
  const out: Banner[] = [];
  for (const { label, re, severity } of DEBUG_PAGES) {
    const m = re.exec(text);
    if (m !== null) out.push({ label, text: m[0], index: m.index, severity });
  }
  if (status >= 400) {
    for (const { label, re } of ERROR_PAGES) {
      const m = re.exec(text);
      if (m !== null) out.push({ label, text: m[0], index: m.index, severity: 'low' });
    }
  }
  return out;
}

/**
 * The BEGIN and END lines of PEM private keys (any kind). A key is a BEGIN line, then its body, then
 * the END line of the same kind, with no other BEGIN or END line between them: found from these
 * lines, each body read once, rather than by one pattern whose body (it may hold `-`) would rescan
 * the rest of the text from every BEGIN line without an END.
 */
const PEM_LINE = /-----(BEGIN|END) ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY|PGP PRIVATE KEY BLOCK)-----/g;
/** A PEM body: base64, headers (`Proc-Type: 4,ENCRYPTED`), line breaks (also JSON-escaped ones, removed first). */
const PEM_BODY = /^[\sA-Za-z0-9+/=:,-]+$/;
/** The longest body taken for a key (an 8192-bit RSA key is about 6.5 KiB). */
const MAX_PEM_BODY = 32 * 1024;

/** PEM private keys (any kind), with a body: a header alone (documentation) is not a key. Works on JSON-escaped text too. */
export function privateKeys(text: string): Match[] {
  const out: Match[] = [];
  const lines = [...text.matchAll(PEM_LINE)];
  for (let i = 0; i + 1 < lines.length; i++) {
    const begin = lines[i]!;
    const end = lines[i + 1]!;
    if (begin[1] !== 'BEGIN' || end[1] !== 'END' || end[2] !== begin[2]) continue;
    const start = begin.index + begin[0].length;
    if (end.index - start > MAX_PEM_BODY) continue;
    const body = text.slice(start, end.index).replace(/\\[rn]/g, '\n');
    if (PEM_BODY.test(body) && body.replace(/[^A-Za-z0-9+/=]/g, '').length >= 40) {
      out.push({ label: `PEM ${begin[2]}`, text: text.slice(begin.index, end.index + end[0].length), index: begin.index });
      i++;
    }
  }
  return out;
}

/** Secrets of well-known formats; documented example values (AKIAIOSFODNN7EXAMPLE…) are not secrets. */
const TOKENS: readonly { label: string; re: RegExp }[] = [
  { label: 'AWS access key ID', re: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g },
  { label: 'GitHub token', re: /\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})\b/g },
  { label: 'Slack token', re: /\bxox[abposr]-[A-Za-z0-9-]{10,250}\b/g },
  { label: 'Stripe live secret key', re: /\b[sr]k_live_[A-Za-z0-9]{24,247}\b/g },
];

export function tokens(text: string): Match[] {
  const out: Match[] = [];
  for (const { label, re } of TOKENS) for (const m of text.matchAll(re)) if (!/EXAMPLE/i.test(m[0])) out.push({ label, text: m[0], index: m.index });
  return out.sort((a, b) => a.index - b.index);
}

/** A password hash, as the whole value: bcrypt, argon2, scrypt, yescrypt, SHA-crypt, MD5-crypt, PBKDF2 (Django). */
const HASHES: readonly { label: string; re: RegExp }[] = [
  { label: 'bcrypt', re: /^\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}$/ },
  { label: 'argon2', re: /^\$argon2(?:id|i|d)\$(?:v=\d+\$)?m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$/ },
  { label: 'scrypt', re: /^\$(?:scrypt\$[^\s$]+|7\$[./A-Za-z0-9]+)\$[^\s$]+(?:\$[^\s$]+)?$/ },
  { label: 'yescrypt', re: /^\$y\$[./A-Za-z0-9]+\$[./A-Za-z0-9]+\$[./A-Za-z0-9]{43}$/ },
  { label: 'SHA-crypt', re: /^\$[56]\$(?:rounds=\d+\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{43,86}$/ },
  { label: 'MD5-crypt', re: /^\$1\$[./A-Za-z0-9]{1,8}\$[./A-Za-z0-9]{22}$/ },
  { label: 'PBKDF2 (Django)', re: /^pbkdf2_sha(?:1|256|512)\$\d+\$[^\s$]+\$[A-Za-z0-9+/=]{20,}$/ },
];

export function passwordHash(value: string): string | undefined {
  return HASHES.find((h) => h.re.test(value))?.label;
}

/** Issuer ranges and lengths of the card schemes worth naming; anything else is not a card to this check. */
const SCHEMES: readonly { label: string; re: RegExp; lengths: readonly number[] }[] = [
  { label: 'Visa', re: /^4/, lengths: [13, 16, 19] },
  { label: 'Mastercard', re: /^(?:5[1-5]|2[2-7])/, lengths: [16] },
  { label: 'American Express', re: /^3[47]/, lengths: [15] },
  { label: 'Discover', re: /^(?:6011|65|64[4-9])/, lengths: [16, 17, 18, 19] },
  { label: 'JCB', re: /^35(?:2[89]|[3-8]\d)/, lengths: [16, 17, 18, 19] },
  { label: 'Diners Club', re: /^3(?:0[0-5]|[68])/, lengths: [14, 15, 16, 17, 18, 19] },
  { label: 'UnionPay', re: /^62/, lengths: [16, 17, 18, 19] },
];

export function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return sum % 10 === 0;
}

/** A primary account number: 13–19 digits (spaces or dashes between groups allowed), a known scheme's range and length, passing Luhn. */
export function cardNumber(value: string): string | undefined {
  if (!/^\d(?:[ -]?\d){12,18}$/.test(value)) return undefined;
  const digits = value.replace(/[ -]/g, '');
  if (/^(\d)\1+$/.test(digits)) return undefined;
  const scheme = SCHEMES.find((s) => s.re.test(digits) && s.lengths.includes(digits.length));
  return scheme !== undefined && luhn(digits) ? scheme.label : undefined;
}

/** `AKIA…WXYZ (20 characters)`: enough to recognise the secret, not to use it. */
export function mask(secret: string): string {
  if (secret.length < 10) return `${secret.slice(0, 1)}… (${secret.length} characters)`;
  const keep = secret.length >= 16 ? 4 : 2;
  return `${secret.slice(0, keep)}…${secret.slice(-keep)} (${secret.length} characters)`;
}

/** The line `index` is on, from `index` on, at most `max` characters: the context of a match in a detail. */
export function lineFrom(text: string, index: number, max = 100): string {
  const end = text.indexOf('\n', index);
  const line = text.slice(index, end < 0 ? undefined : end).trim();
  return line.length <= max ? line : `${line.slice(0, max)}…`;
}

/**
 * A body as the text a person reads: JSON escapes (`\\n`, `\\"`, `\\/`) and the HTML an error
 * page wraps a trace in (`<br>`, `&nbsp;`, entities) undone, for the trace, error and page
 * signatures. Secrets are matched on the raw body.
 */
export function readableText(body: string): string {
  let text = /\\[n"/]/.test(body) ? body.replace(/\\(["\\/nrt])/g, (_m, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c === 't' ? '\t' : c)) : body;
  if (/<br\s*\/?>|&(?:nbsp|quot|#39|lt|gt|amp);/i.test(text)) {
    text = text.replace(/<br\s*\/?>/gi, '\n').replace(/&nbsp;/gi, ' ').replace(/&quot;/gi, '"').replace(/&#39;/g, "'").replace(/&lt;/gi, '<').replace(/&gt;/gi, '>').replace(/&amp;/gi, '&');
  }
  return text;
}

/** Where a match in the readable text starts in the raw body (its first characters, as written or JSON-escaped), else 0. */
export function rawIndex(body: string, text: string): number {
  const head = text.trim().slice(0, 24);
  for (const form of [head, JSON.stringify(head).slice(1, -1)]) {
    const i = body.indexOf(form);
    if (i >= 0) return i;
  }
  return 0;
}
