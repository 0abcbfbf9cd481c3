// YAML text → validated MeshConfig. Positions come from the YAML document, so every problem names
// the file, line and column of the field at fault, and all problems of a file are reported at once.
import { readFile } from 'node:fs/promises';
import { Document, isMap, isNode, isScalar, LineCounter, parseDocument, visit, type Node } from 'yaml';
import type { z } from 'zod';
import { ErrorCode, FaultlineError, describe } from '../errors.ts';
import { ConfigError, fieldPath, type ConfigProblem } from './errors.ts';
import { checkReferences, type ReferenceProblem } from './references.ts';
import { MeshConfigSchema, type MeshConfig } from './schema.ts';

export interface LoadedConfig {
  config: MeshConfig;
  source: string;
  /** The file's text, kept so the snapshot version is a hash of what was applied. */
  text: string;
}

export async function loadConfigFile(file: string): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new FaultlineError(ErrorCode.ConfigUnreadable, `cannot read config ${file}: ${describe(error)}`, { cause: error });
  }
  return { config: parseConfig(text, file), source: file, text };
}

/** Parses and validates; throws ConfigError listing every problem. */
export function parseConfig(text: string, file = '<config>'): MeshConfig {
  return parseWithSchema(MeshConfigSchema, text, file, { check: checkReferences });
}

export interface ParseOptions<T> {
  /** Adjusts the parsed document before validation (e.g. fills a field from elsewhere). */
  readonly prepare?: (value: unknown) => unknown;
  /** Checks the schema cannot express; paths are into the document. */
  readonly check?: (value: T) => ReferenceProblem[];
}

/**
 * YAML (or JSON, which is YAML) text → a value of the schema, or a ConfigError naming the file, line,
 * column and field of every problem at once. The mesh config and a PUT fault are both read this way.
 */
export function parseWithSchema<S extends z.ZodType>(schema: S, text: string, file: string, options: ParseOptions<z.output<S>> = {}): z.output<S> {
  const lineCounter = new LineCounter();
  const position = (offset: number) => lineCounter.linePos(offset);
  const at = (offset: number, message: string): ConfigProblem => {
    const { line, col } = position(offset);
    return { file, line, column: col, field: '', message: `YAML: ${message}` };
  };
  const { doc, syntax } = readDocument(text, lineCounter);
  if (syntax.length > 0) throw listed(syntax, (s) => at(s.offset, s.message));

  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {};
  } catch (error) {
    // An alias bomb (aliases of aliases, expanding exponentially) is refused at its first alias.
    if (error instanceof ReferenceError) throw new ConfigError([at(firstAlias(doc), `aliases expand to too much (more than ${MAX_ALIAS_COUNT} expansions)`)]);
    throw new ConfigError([at(0, `cannot read the document (${error instanceof RangeError ? 'nested too deeply' : 'malformed'})`)]);
  }
  const locate = (finding: Finding): ConfigProblem => {
    const { line, col } = position(offsetOf(doc, finding.path, finding.key));
    return { file, line, column: col, field: fieldPath(finding.key ? [...finding.path, finding.key] : finding.path), message: finding.message };
  };
  const parsed = schema.safeParse(options.prepare ? options.prepare(value) : value);
  if (!parsed.success) throw listed(parsed.error.issues.flatMap(findingsOf), locate);
  const references = options.check?.(parsed.data) ?? [];
  if (references.length > 0) throw listed(references, locate);
  return parsed.data;
}

/** Where a field of a (valid) document is: its line and column, for messages about a config that loaded. */
export function locator(text: string, file: string): (path: readonly PropertyKey[]) => { file: string; line: number; column: number; field: string } {
  const lineCounter = new LineCounter();
  const { doc } = readDocument(text, lineCounter);
  return (path) => {
    const { line, col } = lineCounter.linePos(offsetOf(doc, path));
    return { file, line, column: col, field: fieldPath(path) };
  };
}

/** Alias expansions a document may make: far above any real file, far below an alias bomb. */
const MAX_ALIAS_COUNT = 1_000;
/** Problems listed with their positions; beyond, counted (locating each costs a walk of its map). */
const MAX_LISTED = 100;

function listed<T>(found: readonly T[], toProblem: (item: T) => ConfigProblem): ConfigError {
  return new ConfigError(found.slice(0, MAX_LISTED).map(toProblem), Math.max(0, found.length - MAX_LISTED));
}

/**
 * The document and its syntax problems. Duplicate keys are found here in one pass: the parser's own
 * check compares each key with every other key of its map, seconds of CPU for a 64 KiB body of
 * keys. A document nested deeper than the parser's stack is a problem at its start.
 */
function readDocument(text: string, lineCounter: LineCounter): { doc: Document; syntax: { offset: number; message: string }[] } {
  try {
    const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
    // The parser reports its own stack overflow (deep nesting) with the engine's words: ours are plainer.
    const syntax = doc.errors.map((error) => ({ offset: error.pos[0], message: /stack/i.test(error.message) ? 'nested too deeply' : error.message.split('\n')[0]! }));
    visit(doc, {
      Map(_key, map) {
        const seen = new Set<unknown>();
        for (const { key } of map.items) {
          if (!isScalar(key)) continue;
          if (seen.has(key.value)) syntax.push({ offset: key.range?.[0] ?? 0, message: 'Map keys must be unique' });
          seen.add(key.value);
        }
      },
    });
    return { doc, syntax: syntax.sort((a, b) => a.offset - b.offset) };
  } catch (error) {
    return { doc: new Document(), syntax: [{ offset: 0, message: `cannot read the document (${error instanceof RangeError ? 'nested too deeply' : 'malformed'})` }] };
  }
}

function firstAlias(doc: Document): number {
  let offset = 0;
  visit(doc, {
    Alias(_key, node) {
      offset = node.range?.[0] ?? 0;
      return visit.BREAK;
    },
  });
  return offset;
}

/** A problem before it is given a position: where in the document, and what. */
interface Finding {
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly key?: string;
}

function findingsOf(issue: z.core.$ZodIssue): Finding[] {
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => ({ path: issue.path, message: `unknown field "${key}"`, key }));
    case 'invalid_union':
      return [{ path: issue.path, message: `expected ${issue.errors.map(describeBranch).join(', or ')}` }];
    case 'invalid_type':
      return [{ path: issue.path, message: issue.message.replace(/^Invalid input: /, '').replace(/, received undefined$/, ', but it is missing') }];
    default:
      return [{ path: issue.path, message: issue.message.replace(/^Invalid input: /, '') }];
  }
}

function describeBranch(branch: z.core.$ZodIssue[]): string {
  const first = branch[0];
  if (!first) return 'something else';
  if (first.code === 'invalid_value') return `one of ${first.values.map((v) => JSON.stringify(v)).join(' | ')}`;
  if (first.code === 'invalid_type' && first.path.length === 0) return `a${/^[aeiou]/.test(first.expected) ? 'n' : ''} ${first.expected}`;
  return `${fieldPath(first.path)}: ${first.message}`;
}

/** Offset of the deepest node on `path` that exists in the document (the key's own node when asked). */
function offsetOf(doc: Document, path: readonly PropertyKey[], key?: string): number {
  let node: unknown = doc.contents;
  let offset = rangeStart(node) ?? 0;
  for (const segment of key === undefined ? path : [...path, key]) {
    if (!isNode(node) || !('get' in node)) break;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === segment);
      if (!pair) break;
      offset = rangeStart(pair.key) ?? offset;
      if (segment === key) break;
      node = pair.value;
      offset = rangeStart(node) ?? offset;
      continue;
    }
    node = (node as { get(k: unknown, keep: true): unknown }).get(segment, true);
    offset = rangeStart(node) ?? offset;
  }
  return offset;
}

function rangeStart(node: unknown): number | undefined {
  return isNode(node) ? (node as Node).range?.[0] : undefined;
}
