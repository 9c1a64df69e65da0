import { TextDecoder } from 'node:util';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { RampartError } from '../../errors/problem.js';

/** `application/xml`, `text/xml` and every `…/…+xml` type (SOAP, Atom, SVG, …): all of them end in an XML parser. */
export const XML_TYPE = /^[a-z0-9!#$&^_.+-]+\/(?:[a-z0-9!#$&^_.+-]+\+)?xml$/;

/** The only encodings in which what the gateway checks is what the upstream's parser reads. */
const ENCODINGS = new Set(['utf-8', 'us-ascii']);

/** Whether a `charset` parameter on an XML `Content-Type`, if any, is one the check can vouch for. */
export function xmlCharsetAllowed(parameters: Record<string, string>): boolean {
  const charset = parameters.charset;
  return charset === undefined || ENCODINGS.has(charset.toLowerCase());
}

// Fatal: bytes that are not UTF-8 (a UTF-16 or UTF-32 byte-order mark among them) throw. A UTF-8
// byte-order mark is dropped.
const utf8 = new TextDecoder('utf-8', { fatal: true });
// C0 controls other than tab, LF and CR (NUL among them), and U+FFFE/U+FFFF, are not XML characters.
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const NOT_XML_CHAR = /[\0-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/;
const NOT_ASCII = /[^\0-\x7F]/;
const FIRST_NON_SPACE = /[^ \t\r\n]/;
const DECLARATION = /^<\?xml[ \t\r\n?]/i;
const ENCODING_WORD = /encoding/gi;
const ENCODING = /encoding[ \t\r\n]*=[ \t\r\n]*(?:"([^"]*)"|'([^']*)')/i;
// Without a DTD, the only `<!` constructs a document may hold are comments and CDATA sections; any
// other (DOCTYPE in any case, ENTITY, ELEMENT, ATTLIST, NOTATION, conditional sections) is DTD syntax.
const DTD_MARKUP = /<!(?!--|\[CDATA\[)/;
// Both the XInclude namespace and its 2003 draft, which libxml2 still honours; matched after
// character references are decoded, since `&#88;Include` in a namespace declaration is `XInclude`.
const XINCLUDE = /http:\/\/www\.w3\.org\/200[13]\/xinclude/i;
const CHAR_REF = /&#(?:x([0-9a-f]+)|([0-9]+));/gi;
const TOO_DEEP = 'Maximum nested tags exceeded';
// fast-xml-parser throws on elements with these names (they are dangerous as object keys). Only
// the shape of its tree is used here, so they are renamed rather than refused: they are valid XML.
const RESERVED_NAMES = new Set(['__proto__', 'constructor', 'prototype']);

function invalid(why: string): RampartError {
  return new RampartError('RMP_XML_INVALID', { detail: `The XML body ${why}.` });
}

function mentionsXInclude(text: string): boolean {
  if (XINCLUDE.test(text)) return true;
  if (!text.includes('&#')) return false;
  // One pass: `&#38;#88;` is the text `&#88;`, not an X, and stays as it is.
  const decoded = text.replace(CHAR_REF, (ref, hex: string | undefined, dec: string | undefined) => {
    const point = hex === undefined ? Number(dec) : parseInt(hex, 16);
    return point <= 0x10ffff ? String.fromCodePoint(point) : ref;
  });
  return XINCLUDE.test(decoded);
}

/** The encoding named in an XML declaration (`<?xml … encoding="…"?>`), if it is allowed; throws otherwise. */
function declaredEncoding(text: string, start: number): string | undefined {
  if (!DECLARATION.test(text.slice(start, start + 6))) return undefined;
  const end = text.indexOf('?>', start);
  if (end === -1) throw invalid('has an unterminated XML declaration');
  const declaration = text.slice(start, end);
  const mentions = declaration.match(ENCODING_WORD)?.length ?? 0;
  if (mentions === 0) return undefined;
  const match = ENCODING.exec(declaration);
  const encoding = (match?.[1] ?? match?.[2])?.toLowerCase();
  if (mentions > 1 || encoding === undefined || !ENCODINGS.has(encoding)) throw invalid('must declare encoding="UTF-8" or "US-ASCII", or none');
  return encoding;
}

type Children = Record<string, unknown>[];

/**
 * Element depth of a parsed document (fast-xml-parser's `preserveOrder` tree: each node is
 * `{ name: children[] }` or `{ '#text': … }`), walked without recursion; `false` past `limit`.
 */
function withinDepth(top: Children, limit: number): boolean {
  const stack: [Children, number][] = [[top, 1]];
  while (stack.length > 0) {
    const [children, depth] = stack.pop()!;
    for (const node of children) {
      for (const [key, value] of Object.entries(node)) {
        if (key === '#text' || !Array.isArray(value)) continue;
        if (depth > limit) return false;
        stack.push([value as Children, depth + 1]);
      }
    }
  }
  return true;
}

/**
 * Builds the check for XML bodies of one route. The upstream parses the bytes itself; the check
 * guarantees they hold no DTD (so no external entity, no entity expansion) and no XInclude, that
 * they mean the same characters to any conforming parser (UTF-8 only), and that they are
 * well-formed and no deeper than `depth`. Throws a RampartError; returns nothing.
 */
export function createXmlCheck(options: { depth: number }): (bytes: Buffer, charset: string | undefined) => void {
  const { depth } = options;
  const parser = new XMLParser({
    preserveOrder: true,
    processEntities: false,
    htmlEntities: false,
    // The parser counts only elements with content and allows one more than this; `withinDepth`
    // then counts exactly, over a tree this option has already kept shallow.
    maxNestedTags: depth,
    ignoreAttributes: true,
    transformTagName: (name) => (RESERVED_NAMES.has(name) ? `#${name}` : name),
    ignoreDeclaration: true,
    ignorePiTags: true,
    parseTagValue: false,
    jPath: false,
  });

  return function checkXml(bytes, charset) {
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      throw invalid('must be UTF-8 (UTF-16 and UTF-32 are not accepted)');
    }
    if (NOT_XML_CHAR.test(text)) throw invalid('contains a NUL or control character');
    const start = text.search(FIRST_NON_SPACE);
    if (start === -1 || text.charCodeAt(start) !== 0x3c) throw invalid('must start with "<"');
    const encoding = declaredEncoding(text, start);
    if ((encoding === 'us-ascii' || charset?.toLowerCase() === 'us-ascii') && NOT_ASCII.test(text)) {
      throw invalid('is declared US-ASCII but is not');
    }

    if (DTD_MARKUP.test(text)) {
      throw new RampartError('RMP_XML_FORBIDDEN', { detail: 'XML bodies may not contain a DOCTYPE or other DTD declaration.' });
    }
    if (mentionsXInclude(text)) {
      throw new RampartError('RMP_XML_FORBIDDEN', { detail: 'XML bodies may not use XInclude.' });
    }

    let top: Children;
    try {
      top = parser.parse(text) as Children;
    } catch (error) {
      if ((error as Error).message === TOO_DEEP) throw tooDeep(depth);
      throw invalid('is not well-formed');
    }
    if (!withinDepth(top, depth)) throw tooDeep(depth);
    const roots = top.filter((node) => !('#text' in node)).length;
    if (roots !== 1 || roots !== top.length || XMLValidator.validate(text) !== true) throw invalid('is not well-formed');
  };
}

function tooDeep(depth: number): RampartError {
  return new RampartError('RMP_XML_LIMIT_EXCEEDED', { detail: `The XML body is nested deeper than ${depth} elements.` });
}
