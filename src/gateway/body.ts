import secureJson from 'secure-json-parse';
import { RampartError } from '../errors/problem.js';
import { hasDuplicateKeys } from './json-text.js';

/** 413 RMP_BODY_TOO_LARGE for a body past `limit` bytes. */
export function tooLarge(limit: number): RampartError {
  return new RampartError('RMP_BODY_TOO_LARGE', { detail: `The request body is larger than ${limit} bytes.` });
}

/** Reads a request body into memory, refusing it past `limit` bytes. */
export async function readBody(stream: NodeJS.ReadableStream, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/**
 * Parses a JSON body with `__proto__` and `constructor.prototype` keys refused (400
 * RMP_JSON_FORBIDDEN_KEY) and anything else malformed 400 RMP_JSON_INVALID; the input is never
 * quoted back.
 */
export function parseJsonBody(bytes: Buffer): unknown {
  const text = bytes.toString('utf8');
  let value: unknown;
  try {
    value = secureJson.parse(text, null, { protoAction: 'error', constructorAction: 'error' });
  } catch (error) {
    // secure-json-parse's own message; V8's syntax errors quote the input, so match it exactly.
    const proto = (error as Error).message === 'Object contains forbidden prototype property';
    throw new RampartError(proto ? 'RMP_JSON_FORBIDDEN_KEY' : 'RMP_JSON_INVALID', {
      detail: proto ? 'JSON keys "__proto__" and "constructor.prototype" are not accepted.' : 'The request body is not valid JSON.',
    });
  }
  // The last of two equal keys is what every check saw; a parser that keeps the first would act
  // on a value nothing checked.
  if (hasDuplicateKeys(text)) throw new RampartError('RMP_JSON_DUPLICATE_KEY', { detail: 'A JSON object of the body repeats a key.' });
  return value;
}
