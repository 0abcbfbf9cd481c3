// What lint reads: the calls a mesh file declares (and the problems of a bad declaration), the calls a
// recording shows, how they merge, and the command's output and exit status.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseDocument } from 'yaml';
import { ConfigError } from '../../src/config/errors.ts';
import { parseConfig } from '../../src/config/load.ts';
import { parseExperiment } from '../../src/experiments/spec.ts';
import { paths } from '../../src/lint/model.ts';
import { observe } from '../../src/lint/recording.ts';
import { modelOf } from './helpers.ts';

const run = promisify(execFile);
const CLI = new URL('../../src/cli/main.ts', import.meta.url).pathname;

const CHAIN = `
mesh: {name: t}
services:
  - {name: a, calls: [{service: b, timeout: 1s, retries: 1}]}
  - {name: b, endpoints: [{address: 127.0.0.1:9002}], calls: [c, d], callOrder: sequential}
  - {name: c, endpoints: [{address: 127.0.0.1:9003}]}
  - {name: d, endpoints: [{address: 127.0.0.1:9004}]}
routes:
  - {name: to-c, match: {host: c}, destinations: [{service: c}], timeout: 2s}
`;

function problems(text: string): string[] {
  try {
    parseConfig(text, 'mesh.yaml');
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return (error as ConfigError).problems.map((p) => `${p.line} ${p.field}: ${p.message}`);
  }
  return expect.fail('accepted');
}

/** A request.done as sidecars record it. */
function done(fields: { sidecar: string; direction: 'inbound' | 'outbound'; source: string; service: string | null; requestId: string; end: number; ms: number; method?: string; attempts?: number; endpoint?: string }) {
  return {
    type: 'request.done', seq: 0, time: fields.end, monotonic: 0, sidecar: fields.sidecar, requestId: fields.requestId, traceId: null,
    direction: fields.direction, source: fields.source, service: fields.service, route: null, endpoint: fields.endpoint ?? '127.0.0.1:1',
    method: fields.method ?? 'GET', authority: fields.service ?? '', path: '/', status: 200, flags: [], attempts: fields.attempts ?? 1,
    durationMs: fields.ms, protocol: 'http1', requestBytes: 0, responseBytes: 0, faults: [],
  };
}

describe('lint: the model', () => {
  it('reads the declared calls with the app\'s timeout and retries, and the paths from entries to leaves', () => {
    const model = modelOf(CHAIN);
    const ab = model.edges.find((e) => e.from === 'a' && e.to === 'b')!;
    expect(ab.app).to.include({ timeoutMs: 1000, retries: 1 });
    expect(ab.routes.map((r) => r.name)).to.deep.equal(['default-b']);
    expect(model.edges.find((e) => e.to === 'c')!.routes.map((r) => [r.name, r.timeoutMs])).to.deep.equal([['to-c', 2000]]);
    expect(model.services.get('b')).to.include({ calls: 'declared', callOrder: 'sequential' });
    expect(model.services.get('c')!.calls).to.equal('unknown');
    expect(paths(model)).to.deep.equal([['a', 'b', 'c'], ['a', 'b', 'd']]);
  });

  it('refuses a call to a service that does not exist, a call listed twice, and a suppression with no reason', () => {
    expect(problems(CHAIN.replace('calls: [c, d]', 'calls: [c, e, c]'))).to.deep.equal([
      '5 services[1].calls[1]: no service named "e"',
      '5 services[1].calls[2]: "c" is listed twice',
    ]);
    expect(problems(`${CHAIN}lint: {ignore: [{rule: missing-timeout, service: zz, reason: ""}]}\n`)).to.deep.equal([
      '10 lint.ignore[0].reason: say why: a suppression needs a reason',
    ]);
  });

  it('adds the calls a recording shows, with their rate, latency, concurrency, retries and the app\'s repeats', () => {
    const events = [
      // b calls c then d, one after the other, for request r1; c twice for r2 (the app retried).
      done({ sidecar: 'b', direction: 'outbound', source: 'b', service: 'c', requestId: 'r1', end: 1_010, ms: 10, attempts: 2 }),
      done({ sidecar: 'b', direction: 'outbound', source: 'b', service: 'd', requestId: 'r1', end: 1_030, ms: 15 }),
      done({ sidecar: 'b', direction: 'outbound', source: 'b', service: 'c', requestId: 'r2', end: 2_000, ms: 30 }),
      done({ sidecar: 'b', direction: 'outbound', source: 'b', service: 'c', requestId: 'r2', end: 2_040, ms: 30, method: 'POST' }),
      done({ sidecar: 'c', direction: 'inbound', source: 'b', service: null, requestId: 'r1', end: 1_009, ms: 8 }),
    ];
    const observation = observe('run', events, new Map([['b', 'b'], ['c', 'c']]));
    const bc = observation.edges.find((e) => e.to === 'c')!;
    expect(bc).to.include({ calls: 3, meshRetries: 1, appRepeats: 1, maxInFlight: 1, max: 30 });
    expect(bc.methods).to.deep.equal(['GET', 'POST']);
    expect(observation.services.find((s) => s.service === 'b')!.callOrder).to.equal('sequential');
    expect(observation.services.find((s) => s.service === 'c')!.requests).to.equal(1);
    // A declared mesh without b's calls learns them from the recording.
    const model = modelOf(CHAIN.replace(', calls: [c, d], callOrder: sequential', ''), observation);
    expect(model.services.get('b')!.calls).to.equal('observed');
    expect(model.edges.filter((e) => e.from === 'b').map((e) => [e.to, e.known])).to.deep.equal([['c', 'recording'], ['d', 'recording']]);
  });
});

describe('faultline lint (the command)', function () {
  this.timeout(30_000);

  it('groups findings by service, says where to fix each, and exits 1 on an error', async () => {
    const failed = await run(process.execPath, [CLI, 'lint', 'demo/mesh.yaml']).then(() => undefined, (error: { code: number; stdout: string }) => error);
    expect(failed?.code).to.equal(1);
    expect(failed!.stdout).to.match(/^cart\n {2}error {3}missing-timeout {2}frontend → cart → stock {2}demo\/mesh\.yaml:\d+:\d+ services\[2\]\.calls\[1\]/m);
    expect(failed!.stdout).to.match(/\d+ errors?, \d+ warnings?, \d+ info/);
  });

  it('finds on the demo shop its stock gap and the other problems its mesh file has, and nothing else', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'lint', 'demo/mesh.yaml', '--json', '--fail-on', 'never']);
    const report = JSON.parse(stdout) as { findings: { rule: string; severity: string; path: string[] }[] };
    expect(report.findings.map((f) => `${f.severity} ${f.rule} ${f.path.join('>')}`).sort()).to.deep.equal([
      'error missing-timeout frontend>cart>stock',
      'warning app-timeout-below-mesh cart>payments',
      'warning retry-on-overload cart>payments',
      'warning retry-on-overload frontend>catalog',
      'warning timeout-retry-without-per-try frontend>catalog',
    ]);
  });

  it('prints JSON for CI, and --fail-on never (or a suppression) lets it pass', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'lint', 'demo/mesh.yaml', '--json', '--fail-on', 'never']);
    const report = JSON.parse(stdout) as { schema: string; counts: { error: number }; findings: { rule: string; severity: string; at: { line: number } }[] };
    expect(report.schema).to.equal('faultline.lint/v1');
    expect(report.counts.error).to.equal(report.findings.filter((f) => f.severity === 'error').length).and.be.above(0);

    const dir = await mkdtemp(join(tmpdir(), 'fl-lint-'));
    const mesh = join(dir, 'mesh.yaml');
    const text = await readFile('demo/mesh.yaml', 'utf8');
    const errors = report.findings.filter((f) => f.severity === 'error');
    // Added to the demo's lint.ignore (made when it has none).
    const doc = parseDocument(text);
    if (!doc.hasIn(['lint', 'ignore'])) doc.setIn(['lint', 'ignore'], doc.createNode([]));
    for (const f of errors) doc.addIn(['lint', 'ignore'], { rule: f.rule, service: 'cart', reason: 'stock answers from memory; accepted until the stock service is rewritten' });
    await writeFile(mesh, doc.toString());
    const { stdout: text2 } = await run(process.execPath, [CLI, 'lint', mesh]);
    expect(text2).to.contain('left alone (lint.ignore):').and.contain('accepted until the stock service is rewritten').and.match(/^0 errors/m);
  });

  it('refuses an unknown --fail-on with exit status 2', async () => {
    const failed = await run(process.execPath, [CLI, 'lint', 'demo/mesh.yaml', '--fail-on', 'fatal']).then(() => undefined, (error: { code: number; stderr: string }) => error);
    expect(failed?.code).to.equal(2);
    expect(failed!.stderr).to.contain('--fail-on');
  });

  it('--suggest writes, per finding, a game day that faultline validate accepts, aimed at the mesh file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fl-suggest-'));
    const { stdout } = await run(process.execPath, [CLI, 'lint', 'demo/mesh.yaml', '--suggest', dir, '--fail-on', 'never']);
    const files = (await readdir(dir)).sort();
    expect(files).to.include('lint-missing-timeout-frontend-cart-stock.yaml');
    expect(stdout).to.contain(`suggested ${join(dir, 'lint-missing-timeout-frontend-cart-stock.yaml')}`);
    for (const file of files) {
      const text = await readFile(join(dir, file), 'utf8');
      const experiment = parseExperiment(text, file);
      expect(experiment.target).to.have.property('mesh').that.matches(/demo\/mesh\.yaml$/);
      const { stdout: valid } = await run(process.execPath, [CLI, 'validate', join(dir, file)]);
      expect(valid).to.contain('valid experiment');
    }
    const partition = parseExperiment(await readFile(join(dir, 'lint-missing-timeout-frontend-cart-stock.yaml'), 'utf8'), 'x');
    expect(partition.load.entry).to.equal('frontend');
    expect(partition.method[0]!.fault.partition).to.deep.include({ from: ['cart'], to: ['stock'] });
  });
});
