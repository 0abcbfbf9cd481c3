// A small experiment for the tests of a game day's parts: one service, a fault step, halt conditions.
import { stringify } from 'yaml';
import { parseExperiment, type Experiment } from '../../../src/experiments/spec.ts';

export function experiment(extra: Record<string, unknown> = {}): Experiment {
  return parseExperiment(stringify({
    name: 'parts',
    target: { control: 'http://127.0.0.1:1' },
    load: { entry: 'front', rate: 10 },
    method: [{ at: '1s', duration: '3s', fault: { id: 'front-errors', match: { destination: 'front' }, at: 'inbound', percent: 40, abort: { status: 503 } } }],
    ...extra,
  }), 'parts.yaml');
}
