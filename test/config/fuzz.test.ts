// The three parsers of user input — the mesh config (as validate reads it: parsed, then compiled), a
// runtime fault (as PUT /faults/:id reads it), an experiment file — fuzzed with thousands of seeded
// hostile documents each (test/helpers/yaml-fuzz.ts): every answer is a value or a ConfigError whose
// every problem has a file, a line and a column; never another exception, never a hang (each parser
// runs in a worker, stopped from outside at a deadline).
import { expect } from 'chai';
import { Worker } from 'node:worker_threads';
import { ConfigError } from '../../src/config/errors.ts';
import { parseConfig } from '../../src/config/load.ts';
import { parseExperiment } from '../../src/experiments/spec.ts';
import { FAULT_SEEDS, type ParserName } from '../helpers/fuzz-parsers.ts';
import type { FuzzMessage } from '../helpers/fuzz-worker.ts';
import { YamlFuzzer } from '../helpers/yaml-fuzz.ts';

/** Documents per parser: thousands, or as many as BUDGET_MS allows on a busy machine. */
const DOCUMENTS = 2_000;
const BUDGET_MS = 8_000;
/** A parser that has not finished by then is hung on a document (it stops taking new ones at BUDGET_MS). */
const DEADLINE_MS = BUDGET_MS + 30_000;

/** Fuzzes one parser in a worker; resolves with the counts, rejects with the document at fault (by seed and index). */
function fuzz(parser: ParserName, seed: string): Promise<{ valid: number; invalid: number }> {
  const worker = new Worker(new URL('../helpers/fuzz-worker.ts', import.meta.url), { workerData: { parser, seed, documents: DOCUMENTS, budgetMs: BUDGET_MS } });
  let last = -1;
  let timer: NodeJS.Timeout | undefined;
  return new Promise<{ valid: number; invalid: number }>((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${parser} parser hung on document ${last} of seed "${seed}"`)), DEADLINE_MS);
    worker.on('message', (message: FuzzMessage) => {
      if ('index' in message) last = message.index;
      else if ('done' in message) resolve(message.done);
      else reject(new Error(`${parser} parser, document ${message.at} of seed "${seed}": ${message.failed}`));
    });
    worker.on('error', reject);
    worker.on('exit', () => reject(new Error(`the ${parser} fuzzing worker exited at document ${last}`)));
  }).finally(() => {
    clearTimeout(timer);
    void worker.terminate();
  });
}

describe('parsers under fuzzing', function () {
  this.timeout(DEADLINE_MS + 10_000);

  for (const parser of ['mesh', 'fault', 'experiment'] as const) {
    it(`${parser}: up to ${DOCUMENTS} hostile documents, each a value or positioned problems`, async () => {
      const seen = await fuzz(parser, parser);
      // Real work was done (2,000 documents on a quiet machine; a busy one does fewer), and the
      // generator reaches both sides: some mutations stay valid, most do not.
      const documents = seen.valid + seen.invalid;
      expect(documents).to.be.at.least(200);
      expect(seen.invalid).to.be.above(documents / 2);
      expect(seen.valid).to.be.above(0);
    });
  }

  it('an alias bomb is one problem at its first alias, for each parser', () => {
    const bomb = new YamlFuzzer('bomb', FAULT_SEEDS).aliasBomb();
    for (const parse of [(t: string) => parseConfig(t, 'bomb.yaml'), (t: string) => parseExperiment(t, 'bomb.yaml')]) {
      try {
        parse(bomb);
        expect.fail('an alias bomb was accepted');
      } catch (error) {
        expect(error).to.be.instanceOf(ConfigError);
        expect((error as ConfigError).problems).to.have.length(1);
        expect((error as ConfigError).problems[0]).to.include({ file: 'bomb.yaml', line: 2, column: 10, field: '' });
        expect((error as ConfigError).problems[0]!.message).to.match(/^YAML: aliases expand to too much/);
      }
    }
  });
});
