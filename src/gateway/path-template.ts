import type { RequestContext } from './context.js';

/**
 * A path template (`rewrite`, `successorPath`) over the match's raw (normalized, still
 * percent-encoded) segments: `:name` takes the segment of that parameter, `*` the rest the
 * wildcard matched (from the last pattern segment on, minus that segment's literal start), so
 * nothing is decoded between what was routed and what is sent.
 */
export function templateMapper(pattern: string, template: string): (ctx: RequestContext) => string {
  const patternSegments = pattern.split('/');
  const indexOf = new Map<string, number>();
  patternSegments.forEach((segment, i) => {
    if (segment.startsWith(':')) indexOf.set(segment.slice(1), i);
  });
  const wildcardSegment = patternSegments.length - 1;
  const wildcardOffset = patternSegments[wildcardSegment]!.length - 1;
  const parts: ((segments: string[]) => string)[] = [];
  for (const piece of template.split(/(:[A-Za-z_][A-Za-z0-9_]*|\*)/)) {
    if (piece === '') continue;
    if (piece === '*') parts.push((segments) => segments.slice(wildcardSegment).join('/').slice(wildcardOffset));
    else if (piece.startsWith(':')) {
      const index = indexOf.get(piece.slice(1))!;
      parts.push((segments) => segments[index] ?? '');
    } else parts.push(() => piece);
  }
  if (parts.length === 1 && !template.includes(':') && !template.includes('*')) return () => template;
  return (ctx) => {
    const segments = ctx.path.split('/');
    let out = '';
    for (const part of parts) out += part(segments);
    return out;
  };
}
