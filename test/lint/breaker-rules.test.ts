import { expect } from 'chai';
import { parseExperiment } from '../../src/experiments/spec.ts';
import type { Finding } from '../../src/lint/findings.ts';
import { observe, type EdgeObservation, type Observation, type ServiceObservation } from '../../src/lint/recording.ts';
import { suggestion } from '../../src/lint/suggest.ts';
import { findingsOf, modelOf } from './helpers.ts';

const sidecars = (...services: string[]) =>
  'sidecars:\n' + services.map((s, i) => `  - {name: ${s}, service: ${s}, app: 127.0.0.1:${17000 + i}, outbound: 127.0.0.1:${17100 + i}, inbound: 127.0.0.1:${17200 + i}, admin: 127.0.0.1:${17300 + i}}\n`).join('');

// a → b, b with a breaker that trips on failures, a route with a timeout and retries on 5xx.
const BREAKER = `
mesh: {name: t}
services:
  - {name: a, endpoints: [{address: 127.0.0.1:17000}], calls: [b]}
  - name: b
    endpoints: [{address: 127.0.0.1:17001}, {address: 127.0.0.2:17001}]
    circuitBreaker: {maxConnections: 64, failureRatio: {threshold: 0.5, minRequests: 20, window: 10s}}
routes:
  - {name: to-b, match: {host: b}, destinations: [{service: b}], timeout: 1s, retries: {attempts: 2, retryOn: [5xx]}}
${sidecars('a', 'b')}`;

function edge(from: string, to: string, rps: number, fields: Partial<EdgeObservation> = {}): EdgeObservation {
  return { from, to, calls: rps * 60, rps, p50: 10, p99: 20, p999: 30, max: 40, methods: ['GET'], maxInFlight: 2, meshRetries: 0, appRepeats: 0, ...fields };
}

function service(name: string, rps: number, endpoints = 1): ServiceObservation {
  return { service: name, requests: rps * 60, rps, p99: 20, p999: 30, endpoints, maxInFlight: 2, callOrder: undefined };
}

function recording(edges: EdgeObservation[], services: ServiceObservation[]): Observation {
  return { dir: 'reports/run', windowMs: 60_000, edges, services };
}

/** Each suggested game day is an experiment `faultline validate` accepts. */
function validSuggestions(found: readonly Finding[], yaml: string, observation?: Observation): void {
  const model = modelOf(yaml, observation);
  const predicting = found.filter((f) => f.predicts);
  expect(predicting, 'a finding that predicts a game day').to.not.have.length(0);
  for (const f of predicting) {
    const made = suggestion(f, model, 'experiments/suggested');
    if (typeof made === 'string') throw new Error(`no suggestion for ${f.rule}: ${made}`);
    parseExperiment(made.text, `${made.name}.yaml`);
  }
}

describe('lint: breaker-cannot-trip', () => {
  it('passes a breaker with a trip condition behind routes with timeouts (config only)', () => {
    expect(findingsOf('breaker-cannot-trip', BREAKER)).to.deep.equal([]);
  });

  it('is info on a breaker with neither consecutiveFailures nor failureRatio: it never opens', () => {
    const yaml = BREAKER.replace(', failureRatio: {threshold: 0.5, minRequests: 20, window: 10s}', '');
    const [found, ...more] = findingsOf('breaker-cannot-trip', yaml);
    expect(more).to.have.length(0);
    expect(found).to.include({ severity: 'info', service: 'b', basis: 'config' });
    expect(found!.path).to.deep.equal(['a', 'b']);
    expect(found!.at).to.include({ line: 7, field: 'services[1].circuitBreaker' });
    expect(found!.message).to.contain('never opens').and.contain('maxConnections 64');
    expect(found!.predicts!.fault).to.deep.include({ at: 'attempt', abort: { status: 503 } });
    expect(found!.predicts!.expect).to.deep.equal([{ breaker: { service: 'b', opensWithin: '10s' } }]);
    validSuggestions([found!], yaml);
  });

  it('warns when no mesh timer fails a hung try before the caller leaves: the breaker never counts it', () => {
    const yaml = BREAKER.replace('timeout: 1s, ', '').replace('calls: [b]', 'calls: [{service: b, timeout: 2s}]');
    const [found, ...more] = findingsOf('breaker-cannot-trip', yaml);
    expect(more).to.have.length(0);
    expect(found).to.include({ severity: 'warning', service: 'a', route: 'to-b' });
    expect(found!.at).to.include({ line: 9, field: 'routes[0]' });
    expect(found!.message).to.contain('no mesh timeout').and.contain('route to-b');
    expect(found!.why).to.contain('2s'); // the app leaves: neither way
    expect(found!.predicts!.fault).to.deep.include({ at: 'inbound', delay: { fixed: '3s' } });
    validSuggestions([found!], yaml);
    // A per-try or idle timeout is enough: an expired try is a failure (504 UT).
    expect(findingsOf('breaker-cannot-trip', yaml.replace('retryOn: [5xx]', 'retryOn: [5xx], perTryTimeout: 300ms'))).to.deep.equal([]);
    expect(findingsOf('breaker-cannot-trip', yaml.replace('retries:', 'idleTimeout: 1s, retries:'))).to.deep.equal([]);
    // A route timeout the app never waits for is no better.
    const appFirst = BREAKER.replace('calls: [b]', 'calls: [{service: b, timeout: 800ms}]');
    const [late] = findingsOf('breaker-cannot-trip', appFirst);
    expect(late).to.include({ severity: 'warning', service: 'a' });
    expect(late!.at.field).to.equal('services[0].calls[0]');
    expect(late!.message).to.contain('after 800ms').and.contain('timeout of 1s');
    expect(late!.predicts!.fault).to.deep.include({ delay: { fixed: '3s' } });
  });

  it('warns, with a recording, when a sidecar never sees minRequests tries in the window, retries and budget included', () => {
    const low = recording([edge('a', 'b', 0.5)], [service('a', 0.5), service('b', 0.5, 2)]);
    const [found, ...more] = findingsOf('breaker-cannot-trip', BREAKER, low).filter((f) => f.severity === 'warning');
    expect(more).to.have.length(0);
    expect(found).to.include({ severity: 'warning', service: 'b', basis: 'config+recording' });
    expect(found!.path).to.deep.equal(['a', 'b']);
    expect(found!.at).to.include({ line: 7, field: 'services[1].circuitBreaker.failureRatio.minRequests' });
    // 0.5/s × 10 s = 5 calls, + 2 retries each (10, within the budget's 0.2 × 0.5 + 10 per second) = 15 < 20
    expect(found!.message).to.contain('at most 15 tries').and.contain('10s window').and.contain('minRequests 20');
    expect(found!.predicts!.rate).to.equal(0.5);
    validSuggestions([found!], BREAKER, low);
    // 1/s: 10 calls + 20 retries = 30 ≥ 20: it can open.
    const enough = recording([edge('a', 'b', 1)], [service('a', 1), service('b', 1, 2)]);
    expect(findingsOf('breaker-cannot-trip', BREAKER, enough).filter((f) => f.severity === 'warning')).to.deep.equal([]);
  });

  it('splits the traffic among the caller\'s sidecars and a route\'s subsets: each has its own breaker', () => {
    const canary = BREAKER.replace('{address: 127.0.0.2:17001}', '{address: 127.0.0.2:17001, labels: {v: "2"}}')
      .replace('destinations: [{service: b}], timeout: 1s, retries: {attempts: 2, retryOn: [5xx]}', 'destinations: [{service: b, subset: {v: "2"}, weight: 10}, {service: b, weight: 90}], timeout: 1s')
      .replace('maxConnections: 64, ', '');
    const obs = recording([edge('a', 'b', 5)], [service('a', 5), service('b', 5, 2)]);
    const found = findingsOf('breaker-cannot-trip', canary, obs).filter((f) => f.severity === 'warning');
    // v=2 gets 10 % of 5/s: 5 tries in 10 s; the whole-service destination 45.
    expect(found.map((f) => f.message.split(' sees')[0])).to.deep.equal(['a\'s breaker on b [v=2]']);
    expect(found[0]!.predicts, 'the other breaker can open: the game day would not fail').to.equal(undefined);
    const twoSidecars = canary.replace('sidecars:\n', 'sidecars:\n  - {name: a-2, service: a, app: 127.0.0.1:17010, outbound: 127.0.0.1:17110, inbound: 127.0.0.1:17210, admin: 127.0.0.1:17310}\n');
    const lowered = recording([edge('a', 'b', 3.8)], [service('a', 3.8), service('b', 3.8, 2)]);
    expect(findingsOf('breaker-cannot-trip', twoSidecars, lowered).filter((f) => f.severity === 'warning')).to.have.length(2); // 1.9/s × 0.9 × 10 < 20
  });

  it('is info, with a recording, when the limits are above what even a hang can pile up', () => {
    const obs = recording([edge('a', 'b', 10, { maxInFlight: 3 })], [service('a', 10), service('b', 10, 2)]);
    const [found, ...more] = findingsOf('breaker-cannot-trip', BREAKER, obs);
    expect(more).to.have.length(0);
    expect(found).to.include({ severity: 'info', service: 'b' });
    expect(found!.at.field).to.equal('services[1].circuitBreaker.maxRequests');
    // 10/s × 1 s route timeout = 10 outstanding < maxRequests 1024 (≤ 64 + 1024 pending)
    expect(found!.message).to.contain('at most 10 tries are outstanding').and.contain('maxRequests 1024').and.contain('3 were seen');
    expect(found!.predicts).to.equal(undefined);
    const tight = BREAKER.replace('maxConnections: 64', 'maxConnections: 8, maxPendingRequests: 0');
    expect(findingsOf('breaker-cannot-trip', tight, obs)).to.deep.equal([]);
  });
});

// c → s: s with outlier detection.
const OUTLIER = `
mesh: {name: t}
services:
  - {name: c, endpoints: [{address: 127.0.0.1:17000}], calls: [s]}
  - name: s
    endpoints: [{address: 127.0.0.1:17001}, {address: 127.0.0.2:17001}]
    outlierDetection: {consecutive5xx: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50}
routes:
  - {name: to-s, match: {host: s}, destinations: [{service: s}], timeout: 1s, retries: {attempts: 1, retryOn: [5xx]}}
${sidecars('c', 's')}`;

describe('lint: ejection-cannot-act', () => {
  it('passes outlier detection over two endpoints that may eject one (config only)', () => {
    expect(findingsOf('ejection-cannot-act', OUTLIER)).to.deep.equal([]);
  });

  it('warns on a service with one endpoint: the first ejection is always allowed, then every call is 503 UH', () => {
    const yaml = OUTLIER.replace(', {address: 127.0.0.2:17001}', '');
    const [found, ...more] = findingsOf('ejection-cannot-act', yaml);
    expect(more).to.have.length(0);
    expect(found).to.include({ severity: 'warning', service: 's' });
    expect(found!.path).to.deep.equal(['c', 's']);
    expect(found!.at).to.include({ line: 7, field: 'services[1].outlierDetection' });
    expect(found!.message).to.contain('one endpoint').and.contain('5 failures').and.contain('503 UH for 30s to 40s');
    expect(found!.predicts!.fault).to.deep.include({ at: 'inbound', abort: { status: 503 }, count: { first: 5 } });
    expect(found!.predicts!.steadyState).to.deep.equal([{ availability: { service: 's', min: 95 } }]);
    validSuggestions([found!], yaml);
  });

  it('says the ejection changes nothing when a panic threshold sends the only endpoint every call anyway', () => {
    const yaml = OUTLIER.replace(', {address: 127.0.0.2:17001}', '').replace('    outlierDetection:', '    healthyPanicThreshold: 50\n    outlierDetection:');
    const [found] = findingsOf('ejection-cannot-act', yaml);
    expect(found!.message).to.contain('panic mode sends it every call anyway');
    expect(found!.predicts).to.equal(undefined);
  });

  it('is info when maxEjectionPercent is below one endpoint: only the always-allowed first ejection', () => {
    const yaml = OUTLIER.replace('maxEjectionPercent: 50', 'maxEjectionPercent: 10')
      .replace('{address: 127.0.0.2:17001}]', '{address: 127.0.0.2:17001}, {address: 127.0.0.3:17001}]');
    const [found, ...more] = findingsOf('ejection-cannot-act', yaml);
    expect(more).to.have.length(0);
    expect(found).to.include({ severity: 'info', service: 's' });
    expect(found!.at).to.include({ line: 7, field: 'services[1].outlierDetection.maxEjectionPercent' });
    expect(found!.message).to.contain('0.3 endpoints').and.contain('at most 1 of 3');
    expect(found!.fix).to.contain('67');
    expect(findingsOf('ejection-cannot-act', yaml.replace('maxEjectionPercent: 10', 'maxEjectionPercent: 34'))).to.deep.equal([]);
  });

  it('warns, with a recording built from request.done events, when an endpoint gets fewer tries in an interval than consecutive5xx', () => {
    // c's sidecar calls s 0.2 times a second over a minute, round robin over s's two endpoints.
    const events = Array.from({ length: 12 }, (_, i) => [
      { type: 'request.done', time: i * 5_000 + 20, direction: 'outbound', sidecar: 'c', source: 'c', service: 's', endpoint: `127.0.0.${1 + (i % 2)}:17001`, requestId: `r${i}`, method: 'GET', attempts: 1, durationMs: 20, status: 200 },
      { type: 'request.done', time: i * 5_000 + 15, direction: 'inbound', sidecar: 's', source: 'c', service: 's', endpoint: null, requestId: `r${i}`, method: 'GET', attempts: 1, durationMs: 10, status: 200 },
    ]).flat();
    const obs = observe('reports/run', events, new Map([['c', 'c'], ['s', 's']]));
    const found = findingsOf('ejection-cannot-act', OUTLIER, obs);
    expect(found).to.have.length(1);
    expect(found[0]).to.include({ severity: 'warning', service: 's', route: 'to-s', basis: 'config+recording' });
    expect(found[0]!.at.field).to.equal('services[1].outlierDetection.consecutive5xx');
    // ≈0.2/s × 10 s = 2 calls + 2 retries (within budget) over 2 endpoints: 2 tries per endpoint per interval < 5
    expect(found[0]!.message).to.match(/at most 2(\.\d)? tries per 10s interval/).and.contain('consecutive5xx 5');
    expect(found[0]!.predicts!.expect).to.deep.equal([{ outlierEjects: { service: 's', within: '10s' } }]);
    expect(found[0]!.predicts!.outcome).to.contain('on all 2 of s\'s endpoints');
    validSuggestions(found, OUTLIER, obs);
    const busy = recording([edge('c', 's', 5)], [service('c', 5), service('s', 5, 2)]);
    expect(findingsOf('ejection-cannot-act', OUTLIER, busy)).to.deep.equal([]);
  });

  it('warns when an interval detector has fewer endpoints than its minimumHosts: it never ejects', () => {
    const yaml = OUTLIER.replace('maxEjectionPercent: 50}', 'maxEjectionPercent: 50, failurePercentage: {threshold: 80}, latency: {minimumHosts: 2}}');
    const found = findingsOf('ejection-cannot-act', yaml);
    expect(found).to.have.length(1);
    expect(found[0]).to.include({ severity: 'warning', service: 's', basis: 'config' });
    expect(found[0]!.at).to.include({ field: 'services[1].outlierDetection.failurePercentage.minimumHosts' });
    expect(found[0]!.message).to.contain('only when 5 endpoints had 50 tries').and.contain('has 2: it never ejects');
    expect(found[0]!.fix).to.equal('set outlierDetection.failurePercentage.minimumHosts to 2 or less');
    expect(findingsOf('ejection-cannot-act', yaml.replace('{threshold: 80}', '{threshold: 80, minimumHosts: 2}'))).to.deep.equal([]);
  });

  it('warns, recorded, when an endpoint gets fewer tries per interval than an interval detector\'s requestVolume', () => {
    const yaml = OUTLIER.replace('maxEjectionPercent: 50}', 'maxEjectionPercent: 50, latency: {minimumHosts: 2, requestVolume: 20}}');
    // 5 calls a second from c's one sidecar over 2 endpoints: 25 tries per endpoint per 10 s interval.
    expect(findingsOf('ejection-cannot-act', yaml, recording([edge('c', 's', 5)], [service('c', 5), service('s', 5, 2)]))).to.deep.equal([]);
    const quiet = recording([edge('c', 's', 3)], [service('c', 3), service('s', 3, 2)]);
    const found = findingsOf('ejection-cannot-act', yaml, quiet).filter((f) => f.at.field.includes('latency'));
    expect(found).to.have.length(1);
    expect(found[0]!.at.field).to.equal('services[1].outlierDetection.latency.requestVolume');
    expect(found[0]!.message).to.contain('about 15 tries per 10s interval').and.contain('requestVolume 20');
    expect(found[0]!.fix).to.equal('lower outlierDetection.latency.requestVolume to 15, or lengthen interval to 14s');
  });
});

// s with health checks taking 3 × (5 s + 1 s) = 18 s to mark an endpoint down.
const HEALTH = `
mesh: {name: t}
services:
  - {name: c, endpoints: [{address: 127.0.0.1:17000}], calls: [s]}
  - name: s
    endpoints: [{address: 127.0.0.1:17001}, {address: 127.0.0.2:17001}]
    healthCheck: {path: /healthz}
    circuitBreaker: {consecutiveFailures: 5, coolDown: {base: 30s}}
routes:
  - {name: to-s, match: {host: s}, destinations: [{service: s}], timeout: 1s}
${sidecars('c', 's')}`;

describe('lint: health-check-slower-than-breaker', () => {
  it('passes when the breaker cools down for longer than the checks take', () => {
    expect(findingsOf('health-check-slower-than-breaker', HEALTH)).to.deep.equal([]);
  });

  it('is info when the breaker half-opens before the checks can mark a dead endpoint down', () => {
    const yaml = HEALTH.replace('coolDown: {base: 30s}', 'coolDown: {base: 5s}');
    const [found, ...more] = findingsOf('health-check-slower-than-breaker', yaml);
    expect(more).to.have.length(0);
    expect(found).to.include({ severity: 'info', service: 's', basis: 'config' });
    expect(found!.at).to.include({ line: 8, field: 'services[1].circuitBreaker.coolDown.base' });
    expect(found!.message).to.contain('3 × (interval 5s + timeout 1s) = 18s').and.contain('half-opens after 5s');
    // Outlier detection ejects the dead endpoint from the traffic: the probes go elsewhere.
    const ejecting = yaml.replace('healthCheck: {path: /healthz}', 'healthCheck: {path: /healthz}\n    outlierDetection: {}');
    expect(findingsOf('health-check-slower-than-breaker', ejecting)).to.deep.equal([]);
  });

  it('is info when an ejection ends before the checks can mark the endpoint down', () => {
    const yaml = HEALTH.replace('circuitBreaker: {consecutiveFailures: 5, coolDown: {base: 30s}}', 'outlierDetection: {baseEjectionTime: 10s}');
    const [found, ...more] = findingsOf('health-check-slower-than-breaker', yaml);
    expect(more).to.have.length(0);
    expect(found!.at.field).to.equal('services[1].outlierDetection.baseEjectionTime');
    expect(found!.message).to.contain('18s').and.contain('an ejection lasts 10s');
    expect(findingsOf('health-check-slower-than-breaker', yaml.replace('baseEjectionTime: 10s', 'baseEjectionTime: 30s'))).to.deep.equal([]);
  });
});
