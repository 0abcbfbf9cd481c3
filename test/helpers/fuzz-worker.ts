// A worker that fuzzes one parser (workerData: parser, seed, documents, budgetMs: it stops at
// whichever comes first), so that the test can stop it from outside if a document hangs the parser.
// It posts the index of each document before parsing it, then the counts, or the first failure.
import { parentPort, workerData } from 'node:worker_threads';
import { answerOf, fuzzedParser, type ParserName } from './fuzz-parsers.ts';
import { YamlFuzzer } from './yaml-fuzz.ts';

export type FuzzMessage =
  | { readonly index: number }
  | { readonly done: { valid: number; invalid: number } }
  | { readonly failed: string; readonly at: number };

const { parser, seed, documents, budgetMs } = workerData as { parser: ParserName; seed: string; documents: number; budgetMs: number };
const stopAt = performance.now() + budgetMs;
const { seeds, parse } = await fuzzedParser(parser);
const fuzzer = new YamlFuzzer(seed, seeds);
const counts = { valid: 0, invalid: 0 };
const post = (message: FuzzMessage) => parentPort!.postMessage(message);
let at = 0;
let text = '';
try {
  for (; at < documents && performance.now() < stopAt; at++) {
    text = fuzzer.next();
    post({ index: at });
    counts[answerOf(parse, text)]++;
  }
  post({ done: counts });
} catch (error) {
  post({ failed: `${(error as Error).message}\n  the document: ${JSON.stringify(text.slice(0, 400))}`, at });
}
