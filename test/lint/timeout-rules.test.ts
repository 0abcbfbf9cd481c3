import { readFile } from 'node:fs/promises';
import { expect } from 'chai';
import { parseExperiment } from '../../src/experiments/spec.ts';
import type { RuleId } from '../../src/lint/findings.ts';
import { lint } from '../../src/lint/lint.ts';
import { observe, type Observation } from '../../src/lint/recording.ts';
import { suggestion } from '../../src/lint/suggest.ts';
import { findingsOf, modelOf } from './helpers.ts';

// a → b over route to-b (line 7), with sidecars so that a game day can enter at a. Each test plants
// one problem by replacing the route's policy.
const MESH = `
mesh: {name: t}
services:
  - {name: a, endpoints: [{address: 127.0.0.1:9001}], calls: [{service: b, timeout: 800ms}]}
  - {name: b, endpoints: [{address: 127.0.0.1:9002}]}
routes:
  - {name: to-b, match: {host: b}, destinations: [{service: b}], POLICY}
sidecars:
  - {service: a, app: 127.0.0.1:9001, outbound: 127.0.0.1:9101, inbound: 127.0.0.1:9201, admin: 127.0.0.1:9301}
  - {service: b, app: 127.0.0.1:9002, outbound: 127.0.0.1:9102, inbound: 127.0.0.1:9202, admin: 127.0.0.1:9302}
`;
const mesh = (policy: string, app = 'timeout: 800ms') => MESH.replace('POLICY', policy).replace('timeout: 800ms}', `${app}}`);

// 3 tries of 300 ms, backoff up to 25 + 50 ms: the tries may take 975 ms, within the 1 s timeout.
const RETRIES = 'timeout: 1s, retries: {attempts: 2, perTryTimeout: 300ms, retryOn: [5xx]}';

describe('lint: app-timeout-below-mesh', () => {
  it('finds an app that leaves before the mesh\'s last try can end, at the app\'s declared call', () => {
    const [found, ...more] = findingsOf('app-timeout-below-mesh', mesh(RETRIES));
    expect(more).to.have.length(0);
    expect(found).to.include({ severity: 'warning', service: 'a', route: 'to-b' });
    expect(found!.path).to.deep.equal(['a', 'b']);
    expect(found!.at).to.include({ line: 4, field: 'services[0].calls[0]' });
    expect(found!.message).to.contain('800ms').and.contain('3 tries of 300ms').and.contain('75ms').and.contain('975ms').and.contain('only 2 of 3 tries fit');
    expect(found!.predicts!.fault).to.deep.include({ at: 'attempt', delay: { fixed: '400ms' } });
    expect(found!.predicts!.signature).to.deep.equal({ hop: 'a → b', acted: ['caller-left'] });
  });

  it('takes the route timeout as the mesh\'s bound when it cuts the tries first', () => {
    const [found] = findingsOf('app-timeout-below-mesh', mesh(RETRIES.replace('timeout: 1s', 'timeout: 700ms'), 'timeout: 650ms'));
    expect(found!.message).to.contain('may take 700ms (its timeout of 700ms cuts them first)');
  });

  it('passes an app that waits for every try, and a route that does not retry slow tries', () => {
    expect(findingsOf('app-timeout-below-mesh', mesh(RETRIES, 'timeout: 1s'))).to.deep.equal([]);
    // retryOn without 5xx or gateway-error: the retry layer does not retry a per-try timeout.
    expect(findingsOf('app-timeout-below-mesh', mesh(RETRIES.replace('[5xx]', '[connect-failure]')))).to.deep.equal([]);
    expect(findingsOf('app-timeout-below-mesh', mesh('timeout: 1s'))).to.deep.equal([]);
  });

  it('finds the demo shop\'s cart, which gives payments 800ms against the canary route\'s 975ms of tries', async () => {
    const text = await readFile(new URL('../../demo/mesh.yaml', import.meta.url), 'utf8');
    const found = findingsOf('app-timeout-below-mesh', text);
    expect(found.map((f) => `${f.service}→${f.path.at(-1)} ${f.route}`)).to.deep.equal(['cart→payments payments-canary']);
    expect(found[0]!.message).to.contain('800ms').and.contain('975ms');
    expect(found[0]!.at.field).to.equal('services[2].calls[0]');
  });
});

describe('lint: per-try-ge-route-timeout', () => {
  const PLANTED = mesh('timeout: 500ms, retries: {attempts: 2, perTryTimeout: 500ms, retryOn: [5xx]}', 'timeout: 2s');

  it('finds a per-try timeout not below the route timeout, at the per-try field', () => {
    const [found, ...more] = findingsOf('per-try-ge-route-timeout', PLANTED);
    expect(more).to.have.length(0);
    expect(found).to.include({ severity: 'warning', service: 'a', route: 'to-b' });
    expect(found!.path).to.deep.equal(['a', 'b']);
    expect(found!.at).to.include({ line: 7, field: 'routes[0].retries.perTryTimeout' });
    expect(found!.message).to.contain('(500ms) is not below its timeout (500ms)').and.contain('2 retries');
    expect(found!.fix).to.contain('141ms'); // (500 − 75) / 3
    // Half the tries slow: ~50 % fail with one try; 87.5 % would succeed with three; the objective between.
    expect(found!.predicts!.fault).to.deep.include({ at: 'attempt', percent: 50, delay: { fixed: '600ms' } });
    expect(found!.predicts!.steadyState).to.deep.equal([{ availability: { service: 'b', min: 68 } }]);
    expect(found!.predicts!.signature).to.deep.equal({ hop: 'a → b', acted: ['route-timeout'] });
  });

  it('is not attempts-exceed-budget too', () => {
    expect(findingsOf('attempts-exceed-budget', PLANTED)).to.deep.equal([]);
  });

  it('passes a per-try timeout below the route\'s, and retries that never follow a slow try', () => {
    expect(findingsOf('per-try-ge-route-timeout', PLANTED.replace('perTryTimeout: 500ms', 'perTryTimeout: 140ms'))).to.deep.equal([]);
    expect(findingsOf('per-try-ge-route-timeout', PLANTED.replace('[5xx]', '[reset, connect-failure]'))).to.deep.equal([]);
    expect(findingsOf('per-try-ge-route-timeout', PLANTED.replace('attempts: 2', 'attempts: 0'))).to.deep.equal([]);
  });
});

describe('lint: timeout-retry-without-per-try', () => {
  const PLANTED = mesh('timeout: 500ms, retries: {attempts: 1, retryOn: [gateway-error]}', 'timeout: 2s');

  it('finds retries on a slow try\'s failures with a route timeout and no per-try timeout, at the retries', () => {
    const [found, ...more] = findingsOf('timeout-retry-without-per-try', PLANTED);
    expect(more).to.have.length(0);
    expect(found).to.include({ severity: 'warning', service: 'a', route: 'to-b' });
    expect(found!.path).to.deep.equal(['a', 'b']);
    expect(found!.at).to.include({ line: 7, field: 'routes[0].retries' });
    expect(found!.message).to.contain('retries gateway-error (1 retry)').and.contain('500ms');
    expect(found!.fix).to.contain('237ms'); // (500 − 25) / 2
    expect(found!.predicts!.fault).to.deep.include({ at: 'attempt', percent: 50, delay: { fixed: '600ms' } });
    expect(found!.predicts!.steadyState).to.deep.equal([{ availability: { service: 'b', min: 62 } }]);
  });

  it('passes with a per-try timeout, with retries only on fast failures, and for a route of writes it does not retry', () => {
    expect(findingsOf('timeout-retry-without-per-try', PLANTED.replace('attempts: 1,', 'attempts: 1, perTryTimeout: 200ms,'))).to.deep.equal([]);
    expect(findingsOf('timeout-retry-without-per-try', PLANTED.replace('[gateway-error]', '[connect-failure, reset]'))).to.deep.equal([]);
    expect(findingsOf('timeout-retry-without-per-try', PLANTED.replace('match: {host: b}', 'match: {host: b, method: POST}'))).to.deep.equal([]);
  });

  it('finds the demo shop\'s catalog route: gateway-error retried within 500ms, no per-try timeout', async () => {
    const text = await readFile(new URL('../../demo/mesh.yaml', import.meta.url), 'utf8');
    expect(findingsOf('timeout-retry-without-per-try', text).map((f) => `${f.service}→${f.path.at(-1)} ${f.route}`)).to.deep.equal(['frontend→catalog catalog']);
  });
});

describe('lint: attempts-exceed-budget', () => {
  // 4 tries of 400 ms with backoff up to 50, 100, 100 ms: ends at 400, 850, 1350, 1850 ms; 2 fit in 1 s.
  const PLANTED = mesh('timeout: 1s, retries: {attempts: 3, perTryTimeout: 400ms, retryOn: [5xx], backoff: {base: 50ms, max: 100ms}}', 'timeout: 2s');

  it('finds tries that do not fit in the route timeout, and says how many do', () => {
    const [found, ...more] = findingsOf('attempts-exceed-budget', PLANTED);
    expect(more).to.have.length(0);
    expect(found).to.include({ severity: 'info', service: 'a', route: 'to-b' });
    expect(found!.path).to.deep.equal(['a', 'b']);
    expect(found!.at).to.include({ line: 7, field: 'routes[0].retries' });
    expect(found!.message).to.contain('4 tries of 400ms').and.contain('250ms').and.contain('1.85s').and.contain('1s timeout').and.contain('only 2 slow tries fit');
    expect(found!.predicts!.signature).to.deep.equal({ hop: 'a → b', acted: ['route-timeout'] });
  });

  it('passes tries that fit', () => {
    expect(findingsOf('attempts-exceed-budget', PLANTED.replace('timeout: 1s', 'timeout: 2s'))).to.deep.equal([]);
  });
});

/** A recording of `calls` outbound calls a → b, the i-th taking 3·i ms (p99.9: the slowest, 300 ms for 100). */
function recording(calls = 100): Observation {
  const events = Array.from({ length: calls }, (_, i) => ({
    type: 'request.done', direction: 'outbound', source: 'a', service: 'b', sidecar: 'a', endpoint: '127.0.0.1:9002',
    requestId: `r${i}`, method: 'GET', attempts: 1, time: 1_000 + 50 * i, durationMs: 3 * (i + 1),
  }));
  return observe('run', events, new Map([['a', 'a'], ['b', 'b']]));
}

describe('lint: timeout-below-latency', () => {
  const PLANTED = mesh('timeout: 310ms', 'timeout: 2s');

  it('finds a route timeout within 10 % of the recorded p99.9 of the call, resting on the recording', () => {
    const [found, ...more] = findingsOf('timeout-below-latency', PLANTED, recording());
    expect(more).to.have.length(0);
    expect(found).to.include({ severity: 'warning', service: 'a', route: 'to-b', basis: 'config+recording' });
    expect(found!.path).to.deep.equal(['a', 'b']);
    expect(found!.at).to.include({ line: 7, field: 'routes[0].timeout' });
    expect(found!.message).to.contain('(310ms) is only 3 % above').and.contain('300ms over 100 calls');
    expect(found!.figures.find((f) => f.origin === 'recording')).to.include({ value: '300ms' });
    expect(found!.predicts!.fault).to.deep.include({ at: 'inbound', delay: { fixed: '60ms' } });
  });

  it('finds a per-try timeout at or below the p99.9, with no game day (its cut tries are retried)', () => {
    const [found] = findingsOf('timeout-below-latency', mesh('retries: {attempts: 1, perTryTimeout: 250ms, retryOn: [5xx]}', 'timeout: 2s'), recording());
    expect(found!.at.field).to.equal('routes[0].retries.perTryTimeout');
    expect(found!.message).to.contain('per-try timeout (250ms) is at or below');
    expect(found!.predicts).to.equal(undefined);
  });

  it('passes a timeout with headroom, a recording too small to judge by, and says nothing without a recording', () => {
    expect(findingsOf('timeout-below-latency', PLANTED.replace('310ms', '400ms'), recording())).to.deep.equal([]);
    expect(findingsOf('timeout-below-latency', PLANTED, recording(10))).to.deep.equal([]);
    expect(findingsOf('timeout-below-latency', PLANTED.replace('310ms', '10ms'))).to.deep.equal([]);
  });
});

describe('lint: the timeout rules\' game days', () => {
  const planted: [RuleId, string, Observation?][] = [
    ['app-timeout-below-mesh', mesh(RETRIES)],
    ['per-try-ge-route-timeout', mesh('timeout: 500ms, retries: {attempts: 2, perTryTimeout: 500ms, retryOn: [5xx]}', 'timeout: 2s')],
    ['timeout-retry-without-per-try', mesh('timeout: 500ms, retries: {attempts: 1, retryOn: [gateway-error]}', 'timeout: 2s')],
    ['attempts-exceed-budget', mesh('timeout: 1s, retries: {attempts: 3, perTryTimeout: 400ms, retryOn: [5xx]}', 'timeout: 2s')],
    ['timeout-below-latency', mesh('timeout: 310ms', 'timeout: 2s'), recording()],
  ];
  for (const [rule, yaml, observation] of planted) {
    it(`suggests for ${rule} an experiment that faultline validate accepts`, () => {
      const model = modelOf(yaml, observation);
      const found = lint(model).findings.filter((f) => f.rule === rule);
      expect(found).to.have.length(1);
      const made = suggestion(found[0]!, model, 'experiments/suggested');
      if (typeof made === 'string') expect.fail(made);
      const experiment = parseExperiment(made.text, `experiments/suggested/${made.name}.yaml`);
      expect(experiment.load.entry).to.equal('a');
      expect(experiment.method[0]!.fault.match.destination).to.equal('b');
    });
  }
});
