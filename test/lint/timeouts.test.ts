import { expect } from 'chai';
import { findingsOf } from './helpers.ts';

// a → b → c: a allows b 500 ms; b allows c 2 s. The path inverts: b's timeout to c never matters.
const INVERTED = `
mesh: {name: t}
services:
  - {name: a, calls: [b]}
  - {name: b, endpoints: [{address: 127.0.0.1:9002}], calls: [c]}
  - {name: c, endpoints: [{address: 127.0.0.1:9003}]}
routes:
  - {name: to-b, match: {host: b}, destinations: [{service: b}], timeout: 500ms}
  - {name: to-c, match: {host: c}, destinations: [{service: c}], timeout: 2s}
`;

describe('lint: timeout-inversion', () => {
  it('finds a caller that gives up before its callee\'s own timeout can act, at the caller\'s timeout field', () => {
    const [found, ...more] = findingsOf('timeout-inversion', INVERTED);
    expect(more).to.have.length(0);
    expect(found).to.include({ severity: 'error', service: 'a', route: 'to-b' });
    expect(found!.path).to.deep.equal(['a', 'b', 'c']);
    expect(found!.at).to.include({ line: 8, field: 'routes[0].timeout' });
    expect(found!.message).to.contain('500ms').and.contain('2s');
    expect(found!.predicts!.signature).to.deep.equal({ hop: 'a → b', acted: ['route-timeout', 'timeout', 'per-try-timeout'] });
    // The delay sits between the caller's 500 ms and the callee's 2 s: b would succeed, late.
    expect(found!.predicts!.fault).to.deep.include({ at: 'inbound', delay: { fixed: '1.25s' } });
  });

  it('counts tries × per-try timeout + backoff as what the callee may take', () => {
    const yaml = INVERTED.replace('timeout: 2s}', 'retries: {attempts: 2, perTryTimeout: 300ms, retryOn: [5xx], backoff: {base: 50ms, max: 50ms}}}');
    const [found] = findingsOf('timeout-inversion', yaml);
    expect(found!.message).to.contain('1s'); // 3 × 300 ms + 2 × 50 ms
  });

  it('adds calls made one after another, takes the slowest of calls made at once', () => {
    const twoCalls = INVERTED.replace('calls: [c]}', 'calls: [c, d]}').replace('timeout: 2s}', 'timeout: 300ms}') +
      '  - {name: to-d, match: {host: d}, destinations: [{service: d}], timeout: 300ms}\n';
    const withD = twoCalls.replace('  - {name: c, endpoints', '  - {name: d, endpoints: [{address: 127.0.0.1:9004}]}\n  - {name: c, endpoints');
    expect(findingsOf('timeout-inversion', withD)).to.have.length(0); // max(300, 300) < 500
    const sequential = withD.replace('calls: [c, d]}', 'calls: [c, d], callOrder: sequential}').replace('timeout: 500ms', 'timeout: 550ms');
    const [found] = findingsOf('timeout-inversion', sequential);
    expect(found!.message).to.contain('600ms').and.contain('one after another');
  });

  it('passes a clean path: the caller allows more than the callee may take', () => {
    expect(findingsOf('timeout-inversion', INVERTED.replace('timeout: 500ms', 'timeout: 3s'))).to.deep.equal([]);
  });

  it('takes the app\'s declared timeout when it is shorter than the route\'s', () => {
    const yaml = INVERTED.replace('timeout: 500ms', 'timeout: 5s').replace('calls: [b]', 'calls: [{service: b, timeout: 1s}]');
    const [found] = findingsOf('timeout-inversion', yaml);
    expect(found!.at.field).to.equal('services[0].calls[0]');
    expect(found!.predicts!.signature.acted).to.deep.equal(['caller-left']);
  });
});

describe('lint: missing-timeout', () => {
  it('is an error on a hop of a chain with no timeout anywhere, at its route', () => {
    const yaml = INVERTED.replace(', timeout: 2s}', '}');
    const [found, ...more] = findingsOf('missing-timeout', yaml);
    expect(more).to.have.length(0);
    expect(found).to.include({ severity: 'error', service: 'b', route: 'to-c' });
    expect(found!.path).to.deep.equal(['a', 'b', 'c']);
    expect(found!.at.field).to.equal('routes[1]');
  });

  it('is a warning at a lone leaf: a caller nobody calls, calling a service that calls nobody', () => {
    const yaml = `
mesh: {name: t}
services:
  - {name: a, calls: [b]}
  - {name: b, endpoints: [{address: 127.0.0.1:9002}]}
`;
    const [found] = findingsOf('missing-timeout', yaml);
    expect(found).to.include({ severity: 'warning', service: 'a' });
    expect(found!.at.field).to.equal('services[0].calls[0]');
  });

  it('passes hops bounded by a route timeout, per-try timeouts, or the app\'s own timeout', () => {
    expect(findingsOf('missing-timeout', INVERTED)).to.deep.equal([]);
    const perTry = INVERTED.replace(', timeout: 2s}', ', retries: {attempts: 1, perTryTimeout: 200ms}}');
    expect(findingsOf('missing-timeout', perTry)).to.deep.equal([]);
    const app = INVERTED.replace(', timeout: 2s}', '}').replace('calls: [c]}', 'calls: [{service: c, timeout: 1s}]}');
    expect(findingsOf('missing-timeout', app)).to.deep.equal([]);
  });

  it('finds the demo shop\'s stock gap from the config alone: cart calls stock with no timeout', async () => {
    const { readFile } = await import('node:fs/promises');
    const text = await readFile(new URL('../../demo/mesh.yaml', import.meta.url), 'utf8');
    const found = findingsOf('missing-timeout', text);
    expect(found.map((f) => `${f.severity} ${f.service}→${f.path.at(-1)}`)).to.deep.equal(['error cart→stock']);
  });
});

describe('lint: subset-selects-nothing', () => {
  const MESH = `
mesh: {name: t}
services:
  - {name: pay, endpoints: [{address: 127.0.0.1:9001, labels: {version: v1}}]}
routes:
  - name: canary
    match: {host: pay}
    destinations: [{service: pay, subset: {version: v1}, weight: 90}, {service: pay, subset: {version: v2}, weight: 10}]
`;
  it('warns of a subset no endpoint of the file has (it waits for registered instances), at its field', () => {
    const [found, ...more] = findingsOf('subset-selects-nothing', MESH);
    expect(more).to.have.length(0);
    expect(found).to.include({ severity: 'warning', service: 'pay', route: 'canary' });
    expect(found!.at.field).to.equal('routes[0].destinations[1].subset');
    expect(found!.message).to.contain('10 %').and.contain('version=v2');
  });

  it('passes subsets the file\'s endpoints have', () => {
    expect(findingsOf('subset-selects-nothing', MESH.replace('weight: 10}', 'weight: 10}').replace('labels: {version: v1}}]', 'labels: {version: v1}}, {address: 127.0.0.1:9002, labels: {version: v2}}]'))).to.deep.equal([]);
  });
});
