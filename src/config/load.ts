// YAML text → validated MeshConfig. Positions come from the YAML document, so every problem names
// the file, line and column of the field at fault, and all problems of a file are reported at once.
import { readFile } from 'node:fs/promises';
import { isMap, isNode, isScalar, LineCounter, parseDocument, type Document, type Node } from 'yaml';
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
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const position = (offset: number) => lineCounter.linePos(offset);

  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((error) => {
        const { line, col } = position(error.pos[0]);
        return { file, line, column: col, field: '', message: `YAML: ${error.message.split('\n')[0]}` };
      }),
    );
  }
  const locate = (path: readonly PropertyKey[], message: string, key?: string): ConfigProblem => {
    const offset = offsetOf(doc, path, key);
    const { line, col } = position(offset);
    return { file, line, column: col, field: fieldPath(key ? [...path, key] : path), message };
  };

  const value = doc.toJS() ?? {};
  const parsed = schema.safeParse(options.prepare ? options.prepare(value) : value);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.flatMap((issue) => problemsOf(issue, locate)));
  }
  const references = options.check?.(parsed.data) ?? [];
  if (references.length > 0) {
    throw new ConfigError(references.map((p) => locate(p.path, p.message)));
  }
  return parsed.data;
}

type Locate = (path: readonly PropertyKey[], message: string, key?: string) => ConfigProblem;

function problemsOf(issue: z.core.$ZodIssue, locate: Locate): ConfigProblem[] {
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => locate(issue.path, `unknown field "${key}"`, key));
    case 'invalid_union':
      return [locate(issue.path, `expected ${issue.errors.map(describeBranch).join(', or ')}`)];
    case 'invalid_type':
      return [locate(issue.path, issue.message.replace(/^Invalid input: /, '').replace(/, received undefined$/, ', but it is missing'))];
    default:
      return [locate(issue.path, issue.message.replace(/^Invalid input: /, ''))];
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
