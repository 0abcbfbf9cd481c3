import { expect } from 'chai';
import { parseExperiment } from '../../src/experiments/spec.ts';
import type { RuleId } from '../../src/lint/findings.ts';
import { lint } from '../../src/lint/lint.ts';
import type { EdgeObservation, Observation } from '../../src/lint/recording.ts';
import { suggestion } from '../../src/lint/suggest.ts';
import { findingsOf, modelOf } from './helpers.ts';

// a → b → c → d, every hop retried twice by the mesh (3 tries): 27 tries at d per request at a.
const CHAIN = `
mesh: {name: t}
services:
  - {name: a, endpoints: [{address: 127.0.0.1:9001}], calls: [b]}
  - {name: b, endpoints: [{address: 127.0.0.1:9002}], calls: [c]}
  - {name: c, endpoints: [{address: 127.0.0.1:9003}], calls: [d]}
  - {name: d, endpoints: [{address: 127.0.0.1:9004}]}
routes:
  - {name: to-b, match: {host: b}, destinations: [{service: b}], timeout: 9s, retries: {attempts: 2}}
  - {name: to-c, match: {host: c}, destinations: [{service: c}], timeout: 3s, retries: {attempts: 2}}
  - {name: to-d, match: {host: d}, destinations: [{service: d}], timeout: 1s, retries: {attempts: 2}}
sidecars:
  - {service: a, app: 127.0.0.1:9001, outbound: 127.0.0.1:9101, inbound: 127.0.0.1:9201, admin: 127.0.0.1:9301}
  - {service: b, app: 127.0.0.1:9002, outbound: 127.0.0.1:9102, inbound: 127.0.0.1:9202, admin: 127.0.0.1:9302}
  - {service: c, app: 127.0.0.1:9003, outbound: 127.0.0.1:9103, inbound: 127.0.0.1:9203, admin: 127.0.0.1:9303}
  - {service: d, app: 127.0.0.1:9004, outbound: 127.0.0.1:9104, inbound: 127.0.0.1:9204, admin: 127.0.0.1:9304}
`;

/** The 1-based line of the first line of the mesh holding `text`. */
const lineOf = (yaml: string, text: string): number => yaml.split('\n').findIndex((l) => l.includes(text)) + 1;

/** CHAIN with route `name`'s retries replaced (`retries: {...}` or '' for none). */
const withRetries = (name: string, retries: string, yaml = CHAIN): string =>
  yaml.replace(new RegExp(`(name: ${name},.*?timeout: \\w+).*$`, 'm'), (_m, head: string) => `${head}${retries ? `, ${retries}` : ''}}`);

function edge(from: string, to: string, fields: Partial<EdgeObservation> = {}): EdgeObservation {
  return { from, to, calls: 100, rps: 50, p50: 5, p99: 20, p999: 30, max: 40, methods: ['GET'], maxInFlight: 4, meshRetries: 0, appRepeats: 0, ...fields };
}

function recording(...edges: EdgeObservation[]): Observation {
  return { dir: 'reports/run', windowMs: 10_000, edges, services: [] };
}

describe('lint: retry-amplification', () => {
  it('multiplies the tries along a path, an error above 10, at the topmost retrying hop', () => {
    const [found, ...more] = findingsOf('retry-amplification', CHAIN);
    expect(more).to.have.length(0);
    expect(found).to.include({ severity: 'error', service: 'a', route: 'to-b' });
    expect(found!.path).to.deep.equal(['a', 'b', 'c', 'd']);
    expect(found!.at).to.include({ line: lineOf(CHAIN, 'name: to-b'), field: 'routes[0].retries' });
    // Worst case 27; the default budgets (0.2 + 10/s) bound a hop to 1.2 at high rates, 2.2 at 10 rps.
    expect(found!.message).to.contain('3 × 3 × 3 = 27 tries at d').and.contain('1.73 at high rates').and.contain('10.65 at 10 rps a hop');
    expect(found!.figures).to.deep.include({ name: 'c → d mesh tries (route to-d, on connect-failure, refused-stream, retriable-status-codes)', value: '3', origin: 'config' });
  });

  it('predicts the leaf failing at its inbound: the leaf\'s caller hop fails with the retries used up', () => {
    const [found] = findingsOf('retry-amplification', CHAIN);
    const p = found!.predicts!;
    expect(p.fault).to.deep.equal({ match: { source: 'c', destination: 'd' }, at: 'inbound', abort: { status: 503 } });
    expect(p).to.include({ entry: 'a', durationMs: 10_000 });
    expect(p.steadyState).to.deep.equal([{ availability: { service: 'd', min: 99 } }]);
    expect(p.outcome).to.contain('up to 27 times');
    expect(p.signature).to.deep.equal({ hop: 'c → d', acted: ['retry-limit', 'app', 'fault'] });
  });

  it('is a warning above 4, and ends the path at the deepest retrying hop', () => {
    const yaml = withRetries('to-d', '');
    const [found, ...more] = findingsOf('retry-amplification', yaml);
    expect(more).to.have.length(0);
    expect(found).to.include({ severity: 'warning', service: 'a' });
    expect(found!.path).to.deep.equal(['a', 'b', 'c']);
    expect(found!.message).to.contain('3 × 3 = 9 tries at c');
  });

  it('counts the app\'s declared retries as a layer of their own', () => {
    const yaml = withRetries('to-c', '', withRetries('to-d', '')).replace('calls: [b]', 'calls: [{service: b, retries: 2}]');
    const [found] = findingsOf('retry-amplification', yaml);
    expect(found!.message).to.contain('9 tries at b');
    expect(found!.figures).to.deep.include({ name: 'a → b app tries', value: '3', origin: 'app' });
  });

  it('bounds the budget by the recorded rates and shows the recorded tries beside them', () => {
    const seen = recording(edge('a', 'b', { meshRetries: 10 }), edge('b', 'c', { meshRetries: 10 }), edge('c', 'd', { meshRetries: 10 }));
    const [found] = findingsOf('retry-amplification', CHAIN, seen);
    // 1 + 0.2 + 10/50 = 1.4 a hop: 2.74; recorded 110 tries per 100 calls a hop: 1.33.
    expect(found!.message).to.contain('2.74 at the recorded rates').and.contain('recorded 1.33');
    expect(found!.basis).to.equal('config+recording');
  });

  it('passes one retrying layer, however many tries, and products of 4 or less', () => {
    const one = withRetries('to-b', '', withRetries('to-c', '', withRetries('to-d', 'retries: {attempts: 5}')));
    expect(findingsOf('retry-amplification', one)).to.deep.equal([]);
    const four = withRetries('to-b', 'retries: {attempts: 1}', withRetries('to-c', 'retries: {attempts: 1}', withRetries('to-d', '')));
    expect(findingsOf('retry-amplification', four)).to.deep.equal([]);
  });
});

describe('lint: retry-without-budget', () => {
  const LEAF_ONLY = withRetries('to-b', '', withRetries('to-c', ''));

  it('finds a ratio of 1 or more, at the budget field, and says nothing else caps the retries without a breaker', () => {
    const yaml = withRetries('to-d', 'retries: {attempts: 2, budget: {ratio: 1.5}}', LEAF_ONLY);
    const [found, ...more] = findingsOf('retry-without-budget', yaml);
    expect(more).to.have.length(0);
    expect(found).to.include({ severity: 'warning', service: 'c', route: 'to-d' });
    expect(found!.path).to.deep.equal(['c', 'd']);
    expect(found!.at).to.include({ line: lineOf(yaml, 'name: to-d'), field: 'routes[2].retries.budget' });
    expect(found!.message).to.contain('ratio 1.5').and.contain('nothing else caps them');
  });

  it('names the breaker\'s maxRetries when it caps the retries in progress', () => {
    const yaml = withRetries('to-d', 'retries: {attempts: 2, budget: {ratio: 1}}', LEAF_ONLY).replace('{name: d, endpoints: [{address: 127.0.0.1:9004}]}', '{name: d, endpoints: [{address: 127.0.0.1:9004}], circuitBreaker: {maxRetries: 3}}');
    const [found] = findingsOf('retry-without-budget', yaml);
    expect(found!.message).to.contain('only 3 retries in progress at once cap them');
  });

  it('finds a minPerSecond above the recorded rate: every failed call gets all its retries', () => {
    const seen = recording(edge('c', 'd', { rps: 4 }));
    const [found] = findingsOf('retry-without-budget', LEAF_ONLY, seen);
    expect(found!.message).to.contain('minPerSecond 10 = 10 retries a second is above the 4 calls a second recorded');
    expect(found!.basis).to.equal('config+recording');
    expect(found!.figures).to.deep.include({ name: 'c → d rate', value: '4 rps', origin: 'recording' });
  });

  it('passes the default budget (0.2 + 10/s) without a recording, and at a recorded rate above its floor', () => {
    expect(findingsOf('retry-without-budget', CHAIN)).to.deep.equal([]);
    expect(findingsOf('retry-without-budget', LEAF_ONLY, recording(edge('c', 'd', { rps: 40 })))).to.deep.equal([]);
  });
});

describe('lint: retry-non-idempotent', () => {
  const WRITES = withRetries('to-d', 'retries: {attempts: 2, perTryTimeout: 200ms, retryOn: [5xx], retryNonIdempotent: true}', withRetries('to-b', '', withRetries('to-c', '')));

  it('is an error on a route that may carry writes and retries them after they reached the app', () => {
    const [found, ...more] = findingsOf('retry-non-idempotent', WRITES);
    expect(more).to.have.length(0);
    expect(found).to.include({ severity: 'error', service: 'c', route: 'to-d' });
    expect(found!.path).to.deep.equal(['c', 'd']);
    expect(found!.at).to.include({ line: lineOf(WRITES, 'name: to-d'), field: 'routes[2].retries.retryNonIdempotent' });
    expect(found!.message).to.contain('POST/PATCH').and.contain('on 5xx');
  });

  it('predicts the writes held past the per-try timeout after the app has them: each one applied 3 times', () => {
    const [found] = findingsOf('retry-non-idempotent', WRITES);
    expect(found!.predicts!.fault).to.deep.equal({ match: { source: 'c', destination: 'd', method: ['POST', 'PATCH'] }, at: 'attempt', delay: { fixed: '400ms', before: 'headers' } });
    expect(found!.predicts!.outcome).to.contain('3 times');
    expect(found!.predicts!.signature).to.deep.equal({ hop: 'c → d', acted: ['retry-limit', 'per-try-timeout'] });
  });

  it('takes the methods from a recording, and has no game day when only statuses are retried', () => {
    const seen = recording(edge('c', 'd', { methods: ['GET', 'POST'] }));
    const [found] = findingsOf('retry-non-idempotent', WRITES, seen);
    expect(found!.message).to.contain('retries POST from c').and.contain('the recording shows POST');
    expect(found!.basis).to.equal('config+recording');
    const statusOnly = withRetries('to-d', 'retries: {attempts: 2, retryOn: [retriable-status-codes], retryNonIdempotent: true}', WRITES).replace('name: to-d, match: {host: d}', 'name: to-d, match: {host: d, method: [POST]}');
    const [writes] = findingsOf('retry-non-idempotent', statusOnly);
    expect(writes!.message).to.contain('retries POST').and.contain('retriable-status-codes');
    expect(writes!.predicts).to.equal(undefined);
  });

  it('passes reads-only routes, retries on refused connections only, and routes that leave writes alone', () => {
    expect(findingsOf('retry-non-idempotent', WRITES.replace('match: {host: d}', 'match: {host: d, method: [GET, PUT]}'))).to.deep.equal([]);
    expect(findingsOf('retry-non-idempotent', WRITES.replace('retryOn: [5xx]', 'retryOn: [connect-failure, refused-stream]'))).to.deep.equal([]);
    expect(findingsOf('retry-non-idempotent', WRITES.replace('retryNonIdempotent: true', 'retryNonIdempotent: false'))).to.deep.equal([]);
  });

  it('says nothing of a route to a gRPC service: its calls are retried whatever their method, on the statuses retryOn names', () => {
    const grpc = WRITES.replace('{name: d, endpoints: [{address: 127.0.0.1:9004}]}', '{name: d, protocol: grpc, endpoints: [{address: 127.0.0.1:9004}]}');
    expect(grpc).not.to.equal(WRITES);
    expect(findingsOf('retry-non-idempotent', grpc)).to.deep.equal([]);
  });
});

describe('lint: retry-on-overload', () => {
  const LEAF_ONLY = withRetries('to-b', '', withRetries('to-c', ''));

  it('finds 503 retried by default with the default 20 % budget, and says Retry-After is not honoured', () => {
    const [found, ...more] = findingsOf('retry-on-overload', LEAF_ONLY);
    expect(more).to.have.length(0);
    expect(found).to.include({ severity: 'warning', service: 'c', route: 'to-d' });
    expect(found!.at).to.include({ line: lineOf(LEAF_ONLY, 'name: to-d'), field: 'routes[2].retries' });
    expect(found!.message).to.contain('retries 503').and.contain('20 %').and.contain('does not honour Retry-After');
    expect(found!.predicts!.fault).to.deep.equal({ match: { source: 'c', destination: 'd' }, at: 'inbound', abort: { status: 503, headers: { 'retry-after': '5' } } });
  });

  it('finds 429 in retriableStatusCodes, at retryOn', () => {
    const yaml = withRetries('to-d', 'retries: {attempts: 2, retryOn: [retriable-status-codes], retriableStatusCodes: [429], budget: {ratio: 0.5}}', LEAF_ONLY);
    const [found] = findingsOf('retry-on-overload', yaml);
    expect(found!.message).to.contain('retries 429').and.contain('50 %');
    expect(found!.at.field).to.equal('routes[2].retries.retryOn');
    expect(found!.predicts!.fault).to.deep.include({ abort: { status: 429, headers: { 'retry-after': '5' } } });
  });

  it('finds resource-exhausted, gRPC\'s 429, and predicts it with a gRPC abort; unavailable alone is not overload', () => {
    const yaml = withRetries('to-d', 'retries: {attempts: 2, retryOn: [resource-exhausted, unavailable]}', LEAF_ONLY);
    const [found, ...more] = findingsOf('retry-on-overload', yaml);
    expect(more).to.have.length(0);
    expect(found!.message).to.contain('retries RESOURCE_EXHAUSTED').and.contain('retryOn resource-exhausted');
    expect(found!.predicts!.fault).to.deep.include({ abort: { grpcStatus: 8 } });
    expect(findingsOf('retry-on-overload', withRetries('to-d', 'retries: {attempts: 2, retryOn: [unavailable, cancelled]}', LEAF_ONLY))).to.deep.equal([]);
  });

  it('passes a budget within the SRE\'s 10 %, and retries on failures that are not overload', () => {
    expect(findingsOf('retry-on-overload', withRetries('to-d', 'retries: {attempts: 2, budget: {ratio: 0.1}}', LEAF_ONLY))).to.deep.equal([]);
    expect(findingsOf('retry-on-overload', withRetries('to-d', 'retries: {attempts: 2, retryOn: [connect-failure, reset]}', LEAF_ONLY))).to.deep.equal([]);
  });
});

describe('lint: layered-retries', () => {
  const LEAF_ONLY = withRetries('to-b', '', withRetries('to-c', ''));

  it('finds the app\'s declared retries on a call the mesh retries too, at the route\'s retries', () => {
    const yaml = LEAF_ONLY.replace('calls: [d]', 'calls: [{service: d, retries: 2}]');
    const [found, ...more] = findingsOf('layered-retries', yaml);
    expect(more).to.have.length(0);
    expect(found).to.include({ severity: 'warning', service: 'c', route: 'to-d' });
    expect(found!.path).to.deep.equal(['c', 'd']);
    expect(found!.at).to.include({ line: lineOf(yaml, 'name: to-d'), field: 'routes[2].retries' });
    expect(found!.message).to.contain('3 × 3 = 9 tries at d');
    expect(found!.predicts!.fault).to.deep.equal({ match: { source: 'c', destination: 'd' }, at: 'attempt', abort: { status: 503 } });
  });

  it('finds repeated calls within a request in a recording, when the app declares none', () => {
    const [found] = findingsOf('layered-retries', LEAF_ONLY, recording(edge('c', 'd', { appRepeats: 5 })));
    expect(found!.message).to.contain('declares no retries, but the recording shows 5 repeated calls');
    expect(found!.basis).to.equal('config+recording');
  });

  it('passes app retries on a call the mesh does not retry, and mesh retries alone', () => {
    expect(findingsOf('layered-retries', withRetries('to-d', '', LEAF_ONLY).replace('calls: [d]', 'calls: [{service: d, retries: 2}]'))).to.deep.equal([]);
    expect(findingsOf('layered-retries', LEAF_ONLY)).to.deep.equal([]);
  });
});

describe('lint: backoff-missing', () => {
  const LEAF_ONLY = withRetries('to-b', '', withRetries('to-c', ''));

  it('finds retries whose waits are a few milliseconds, at the backoff field, and says the jitter is there', () => {
    const yaml = withRetries('to-d', 'retries: {attempts: 2, backoff: {base: 1ms, max: 5ms}}', LEAF_ONLY);
    const [found, ...more] = findingsOf('backoff-missing', yaml);
    expect(more).to.have.length(0);
    expect(found).to.include({ severity: 'warning', service: 'c', route: 'to-d' });
    expect(found!.at).to.include({ line: lineOf(yaml, 'name: to-d'), field: 'routes[2].retries.backoff' });
    expect(found!.message).to.contain('2 of 2 retries wait under 10ms').and.contain('random(0, 1ms), random(0, 2ms)');
    expect(found!.why).to.contain('full jitter');
  });

  it('finds a small base even when max is large: the first retries are immediate', () => {
    const yaml = withRetries('to-d', 'retries: {attempts: 3, backoff: {base: 4ms, max: 1s}}', LEAF_ONLY);
    const [found] = findingsOf('backoff-missing', yaml);
    expect(found!.message).to.contain('2 of 3 retries wait under 10ms');
  });

  it('passes the default backoff (25ms, 250ms) and no retries at all', () => {
    expect(findingsOf('backoff-missing', CHAIN)).to.deep.equal([]);
    expect(findingsOf('backoff-missing', withRetries('to-d', 'retries: {attempts: 0, backoff: {base: 0ms, max: 0ms}}', LEAF_ONLY))).to.deep.equal([]);
  });
});

describe('lint: the retry rules\' suggested game days', () => {
  it('are experiments faultline validate accepts, one for each retry finding that predicts one', () => {
    const yaml = withRetries('to-d', 'retries: {attempts: 2, perTryTimeout: 200ms, retryOn: [5xx], retryNonIdempotent: true, backoff: {base: 1ms, max: 2ms}}')
      .replace('calls: [d]', 'calls: [{service: d, retries: 1}]');
    const model = modelOf(yaml);
    const retryRules: RuleId[] = ['retry-amplification', 'retry-non-idempotent', 'retry-on-overload', 'layered-retries'];
    const found = lint(model).findings.filter((f) => retryRules.includes(f.rule));
    expect(new Set(found.map((f) => f.rule))).to.have.length(retryRules.length);
    for (const f of found) {
      const made = suggestion(f, model, 'experiments/suggested');
      if (typeof made === 'string') expect.fail(`${f.rule}: ${made}`);
      expect(() => parseExperiment(made.text, `${made.name}.yaml`), f.rule).not.to.throw();
    }
  });

  it('validate a refused connection, for a hop retried on connect failures only', () => {
    const yaml = withRetries('to-d', 'retries: {attempts: 2, retryOn: [connect-failure]}', withRetries('to-b', '', withRetries('to-c', ''))).replace('calls: [d]', 'calls: [{service: d, retries: 1}]');
    const model = modelOf(yaml);
    const [found] = lint(model).findings.filter((f) => f.rule === 'layered-retries');
    expect(found!.predicts!.fault).to.deep.equal({ at: 'attempt', partition: { from: ['c'], to: ['d'], direction: 'one-way', mode: 'reject' } });
    const made = suggestion(found!, model, 'experiments/suggested');
    if (typeof made === 'string') expect.fail(made);
    expect(() => parseExperiment(made.text, `${made.name}.yaml`)).not.to.throw();
  });
});
