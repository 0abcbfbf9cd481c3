// Seeded generators of hostile YAML documents for fuzzing the parsers: documents built around a real
// file's keys and values, mutations of real files (as text and as structure), alias bombs, and huge
// or deeply nested values. The same seed gives the same documents, so a failure can be replayed.
import seedrandom from 'seedrandom';
import { parse, stringify } from 'yaml';

type Rng = () => number;

export class YamlFuzzer {
  readonly #rng: Rng;
  readonly #seeds: readonly string[];
  readonly #parsed: readonly unknown[];
  readonly #keys: readonly string[];
  readonly #scalars: readonly unknown[];

  /** `seeds`: valid documents of the format; their keys and values are the vocabulary of the rest. */
  constructor(seed: string, seeds: readonly string[]) {
    this.#rng = seedrandom(seed);
    this.#seeds = seeds;
    this.#parsed = seeds.map((text) => parse(text) as unknown);
    const keys = new Set<string>();
    const scalars = new Set<unknown>();
    for (const value of this.#parsed) collect(value, keys, scalars);
    this.#keys = [...keys, '__proto__', 'constructor', '<<', ''];
    this.#scalars = [...scalars, null, true, 0, -1, 1e308, -0.5, 2 ** 53 + 1, '', ' ', '0s', '-1s', '999999h', 'NaN', '../../etc/passwd', '\u0000', '💥'];
  }

  /** The next document: one of the strategies, chosen at random; a huge one seldom (each costs the parser a second). */
  next(): string {
    if (this.#rng() < 0.01) return this.huge();
    const strategies = [
      () => this.mutatedStructure(),
      () => this.mutatedStructure(),
      () => this.mutatedText(),
      () => this.mutatedText(),
      () => stringify(this.#value(4)),
      () => this.aliasBomb(),
    ];
    return this.#pick(strategies)();
  }

  /** A real document with a few of its nodes replaced, removed or added to (copies: the seeds stay), then written out again. */
  mutatedStructure(): string {
    let value = this.#pick(this.#parsed);
    for (let i = 0, n = 1 + this.#int(3); i < n; i++) value = this.#mutate(value, 0);
    // A document mutated away entirely is the empty document.
    return value === undefined ? '' : stringify(value);
  }

  /** A real document with its text cut, spliced or sprinkled with YAML punctuation. */
  mutatedText(): string {
    let text = this.#pick(this.#seeds);
    for (let i = 0, n = 1 + this.#int(4); i < n; i++) {
      const at = this.#int(text.length + 1);
      const edits = [
        () => text.slice(0, at),
        () => text.slice(0, at) + this.#pick([':', '-', '[', '{', '}', ']', '&a ', '*a', '!!binary ', '? ', '|', '>', '#', '"', "'", '\t', '\n  ', '%YAML 1.1\n', '---\n']) + text.slice(at),
        () => text.slice(0, at) + text.slice(at + this.#int(40)),
        () => text.slice(0, at) + text.slice(this.#int(text.length)),
      ];
      text = this.#pick(edits)();
    }
    return text;
  }

  /** Aliases of aliases (a "billion laughs"), at the top or under a real key. */
  aliasBomb(): string {
    const levels = 6 + this.#int(6);
    const lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'];
    for (let i = 1; i < levels; i++) lines.push(`a${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(', ')}]`);
    lines.push(`${this.#pick(this.#keys) || 'x'}: *a${levels - 1}`);
    return `${lines.join('\n')}\n`;
  }

  /** A long string, a long list, many keys, or nesting thousands deep (flow or block). */
  huge(): string {
    const key = this.#pick(this.#keys) || 'x';
    const depth = 1_000 + this.#int(6_000);
    const shapes = [
      () => `${key}: "${'x'.repeat(100_000 + this.#int(400_000))}"\n`,
      () => `${key}: [${Array(10_000).fill('1').join(',')}]\n`,
      () => Array.from({ length: 3_000 }, (_, i) => `k${i % 2_000}: ${i}`).join('\n'),
      () => `${key}: ${'['.repeat(depth)}${']'.repeat(depth)}\n`,
      () => `${key}: ${'{a: '.repeat(depth)}1${'}'.repeat(depth)}\n`,
      () => Array.from({ length: 300 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n') + ' 1\n',
    ];
    return this.#pick(shapes)();
  }

  #mutate(value: unknown, depth: number): unknown {
    const container = typeof value === 'object' && value !== null;
    if (!container || depth > 6 || this.#rng() < 0.2) return this.#pick([() => this.#value(2), () => undefined, () => [value], () => ({ [this.#pick(this.#keys)]: value })])();
    if (Array.isArray(value)) {
      const copy = [...value];
      if (copy.length === 0 || this.#rng() < 0.2) copy.push(this.#value(2));
      else {
        const i = this.#int(copy.length);
        copy[i] = this.#mutate(copy[i], depth + 1);
      }
      return copy.filter((v) => v !== undefined);
    }
    const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    const keys = Object.keys(copy);
    if (keys.length === 0 || this.#rng() < 0.2) copy[this.#pick(this.#keys)] = this.#value(2);
    else {
      const key = this.#pick(keys);
      const next = this.#mutate(copy[key], depth + 1);
      if (next === undefined) delete copy[key];
      else copy[key] = next;
    }
    return copy;
  }

  /** A random value over the vocabulary: scalars, lists and maps of real keys. */
  #value(depth: number): unknown {
    const r = this.#rng();
    if (depth <= 0 || r < 0.5) return this.#pick(this.#scalars);
    if (r < 0.7) return Array.from({ length: this.#int(4) }, () => this.#value(depth - 1));
    return Object.fromEntries(Array.from({ length: this.#int(5) }, () => [this.#pick(this.#keys), this.#value(depth - 1)]));
  }

  #int(n: number): number {
    return Math.floor(this.#rng() * n);
  }

  #pick<T>(items: readonly T[]): T {
    return items[this.#int(items.length)]!;
  }
}

function collect(value: unknown, keys: Set<string>, scalars: Set<unknown>): void {
  if (Array.isArray(value)) for (const v of value) collect(v, keys, scalars);
  else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      keys.add(k);
      collect(v, keys, scalars);
    }
  } else scalars.add(value);
}
