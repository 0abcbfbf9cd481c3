// Attribution through a caller's timeout, on a real game day: frontend → cart → payments, each behind
// its sidecar (app processes, started by the run), a 2.5 s delay on payments under frontend's 1 s route
// timeout to cart. The edge requests fail because frontend's sidecar cut its call to cart (504 UT),
// while payments' own call returned 200 late: each must come down to the delay, surfaced at
// frontend → cart, the route timeout there, and a retry that a per-try timeout would have allowed.
// Then the same walk on hand-made recordings: a failure two hops down seen from each hop on the way
// out, and a run without its recorded config (the route's policies unknown); and what one hop's
// policies did, case by case.
import { expect } from 'chai';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { analyze, readRun } from '../../src/analysis/analyze.ts';
import { actedAt, retryAt } from '../../src/analysis/hop-policy.ts';
import type { Analysis } from '../../src/analysis/types.ts';
import { runExperiment } from '../../src/experiments/runner.ts';
import { writeReportsLine } from '../../src/reports/write.ts';
import { snapshotOf } from '../helpers/mesh.ts';
import { freeAddress } from '../helpers/net.ts';

const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;

/** One service of the chain: calls the next through its sidecar (passing the request id on), answers 200, or 502 when the next failed. */
const CHAIN_APP = `import { createServer, request } from 'node:http';
const [next] = process.argv.slice(2);
process.stdin.on('close', () => process.exit(0)).resume();
createServer((req, res) => {
  if (!next) return void res.end('{"ok":true}');
  const [host, port] = process.env.FAULTLINE_OUTBOUND.split(':');
  const call = request({ host, port, path: '/', headers: { host: next, 'x-request-id': req.headers['x-request-id'] ?? '' } }, (answer) => {
    answer.resume();
    answer.on('end', () => { res.statusCode = answer.statusCode < 500 ? 200 : 502; res.end('{}'); });
  });
  call.on('error', () => { res.statusCode = 502; res.end('{}'); });
  call.end();
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

async function chainMesh(dir: string): Promise<void> {
  await writeFile(join(dir, 'chain.mjs'), CHAIN_APP);
  const chain = [['frontend', 'cart'], ['cart', 'payments'], ['payments']] as const;
  const apps = new Map<string, string>();
  for (const [service] of chain) apps.set(service, await freeAddress());
  const sidecars = [];
  for (const [service, next] of chain) {
    sidecars.push({ service, app: apps.get(service), outbound: await freeAddress(), inbound: await freeAddress(), admin: await freeAddress(), command: ['node', 'chain.mjs', ...(next ? [next] : [])] });
  }
  await writeFile(join(dir, 'mesh.yaml'), stringify({
    mesh: { name: 'chain' },
    services: chain.map(([service]) => ({ name: service, endpoints: [{ address: apps.get(service) }] })),
    // Retries on gateway errors but no per-try timeout: the one try runs into the route timeout.
    routes: [{ name: 'cart', match: { host: 'cart' }, destinations: [{ service: 'cart' }], timeout: '1s', retries: { attempts: 1, retryOn: ['gateway-error'] } }],
    sidecars,
  }));
}

describe('attribution of a delay two hops down, cut by a caller\'s route timeout', function () {
  this.timeout(60_000);

  it('names the delay, the hop where it surfaced (frontend → cart, UT), the route timeout there and why its retry could not act', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faultline-attribution-'));
    await chainMesh(dir);
    const file = join(dir, 'payments-slow.yaml');
    await writeFile(file, stringify({
      name: 'payments-slow',
      target: { mesh: 'mesh.yaml' },
      load: { entry: 'frontend', rate: 10, connections: 4 },
      phases: { warmup: '500ms', baseline: '1s', recovery: '2s' },
      method: [{ at: '0s', duration: '3s', fault: { id: 'payments-slow', match: { destination: 'payments' }, delay: { fixed: '2500ms' } } }],
    }));
    const result = await runExperiment({ file, out: join(dir, 'reports'), seed: 3, stream: quiet, report: writeReportsLine });
    expect(result.outcome, result.journal.reason ?? '').to.equal('passed');
    const report = JSON.parse(await readFile(join(result.dir, 'report.json'), 'utf8')) as Analysis;

    const failed = report.attribution.rows.filter((r) => r.status >= 500);
    expect(failed.length, JSON.stringify(report.attribution.rows.slice(0, 3))).to.be.at.least(3);
    for (const row of failed) {
      expect(row).to.deep.include({ faults: ['payments-slow'], via: 'trace', faultHop: 'cart → payments', service: 'cart', policy: 'timed-out' });
      expect(row.surfaced).to.deep.include({ hop: 'frontend → cart', sidecar: 'frontend', direction: 'outbound', route: 'cart', status: 504, attempts: 1, acted: 'route-timeout' });
      expect(row.surfaced!.flags).to.include('UT');
      // How long the call lasted as its sidecar measured it: about the timeout's 1 s, later on a busy machine.
      expect(row.surfaced!.how).to.match(/^route timeout 1 s of route cart cut the request after \d+(\.\d+)? m?s$/);
      expect(row.surfaced!.retry.verdict).to.equal('per-try-timeout-would-allow');
      expect(row.surfaced!.retry.why).to.include('a per-try timeout under 1 s would have allowed a retry');
      // The surfaced hop is the caller's, the last before the edge: nothing further out.
      expect(row.path.map((h) => h.hop)).to.deep.equal(['frontend → cart']);
    }
    expect(report.attribution.causes).to.deep.equal([{ faults: ['payments-slow'], hop: 'frontend → cart', sidecar: 'frontend', acted: 'route-timeout', retry: 'per-try-timeout-would-allow', failures: failed.length }]);

    const md = await readFile(join(result.dir, 'report.md'), 'utf8');
    expect(md).to.include(`| payments-slow | frontend → cart | frontend | route-timeout | per-try-timeout-would-allow | ${failed.length} |`);
    expect(md).to.match(/- payments-slow \(delay\) on cart → payments; surfaced at frontend → cart \(sidecar frontend\) as 504 UT: route timeout 1 s of route cart/);
    const html = await readFile(join(result.dir, 'report.html'), 'utf8');
    expect(html).to.include('Which fault and which policy each failed request comes down to');
    expect(html).to.match(/<table id="attribution-causes">[\s\S]*?frontend → cart[\s\S]*?route-timeout[\s\S]*?per-try-timeout-would-allow/);
  });
});

describe('attribution from a hand-made recording, with and without the recorded config', () => {
  const T0 = Date.parse('2026-11-25T10:00:00.000Z');
  const at = (s: number) => T0 + s * 1000;
  const iso = (s: number) => new Date(at(s)).toISOString();

  /** front → cart → api: api delayed at cart's sidecar, cart's 500 ms route timeout to api cuts it, cart's app answers 502, front's call to cart has no retries. */
  async function recording(withConfig: boolean): Promise<Analysis> {
    const dir = await mkdtemp(join(tmpdir(), 'faultline-attribution-made-'));
    await writeFile(join(dir, 'experiment.yaml'), stringify({
      name: 'api-slow', target: { mesh: 'mesh.yaml' }, load: { entry: 'front', rate: 10 },
      method: [{ at: '0s', duration: '10s', fault: { id: 'api-slow', match: { destination: 'api' }, delay: { fixed: '2s' } } }],
    }));
    await writeFile(join(dir, 'journal.json'), JSON.stringify({
      experiment: 'api-slow', file: 'x', seed: 1, status: 'complete', outcome: 'passed', reason: null, startedAt: iso(0), finishedAt: iso(20), target: 'mesh',
      phases: [{ name: 'method', startedAt: iso(0), endedAt: iso(10), outcome: 'done', notes: [] }],
      faults: [{ id: 'api-slow', step: 0, injectedAt: iso(0), removedAt: iso(10), renewals: 0, spec: {} }], halts: [], rollback: null, verdicts: [],
    }));
    if (withConfig) {
      await writeFile(join(dir, 'mesh.yaml'), stringify({
        mesh: { name: 'made' },
        services: ['front', 'cart', 'api'].map((name, i) => ({ name, endpoints: [{ address: `127.0.0.1:${9001 + i}` }] })),
        routes: [{ name: 'api', match: { host: 'api' }, destinations: [{ service: 'api' }], timeout: '500ms' }],
      }));
    }
    const done = (sidecar: string, direction: string, source: string, service: string | null, route: string | null, status: number, flags: string[], faults: string[], durationMs: number, t: number) =>
      ({ type: 'request.done', time: at(t), sidecar, direction, requestId: 'r1', traceId: null, source, service, route, method: 'GET', status, attempts: 1, flags, faults, durationMs });
    const events = [
      { type: 'fault.installed', faultId: 'api-slow', time: at(0), sidecar: 'cart' },
      { type: 'fault.applied', time: at(1), sidecar: 'cart', faultId: 'api-slow', action: 'delay', point: 'request', source: 'cart', destination: 'api', requestId: 'r1', attempt: 0 },
      done('cart', 'outbound', 'cart', 'api', 'api', 504, ['DI', 'UT'], ['api-slow'], 501, 1.5),
      done('cart', 'inbound', 'front', null, null, 502, [], [], 505, 1.51),
      done('front', 'outbound', 'front', 'cart', 'default-cart', 502, [], [], 510, 1.52),
      done('front', 'inbound', 'load', null, null, 502, [], [], 515, 1.53),
    ];
    await writeFile(join(dir, 'events.ndjson'), events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    await writeFile(join(dir, 'load.ndjson'), `${JSON.stringify({ t: at(1.53), latencyMs: 515, status: 502, cohort: 'all' })}\n`);
    return analyze(await readRun(dir));
  }

  it('walks to the innermost hop the mesh failed and names each hop\'s policies on the way out', async () => {
    const [row] = (await recording(true)).attribution.rows;
    expect(row).to.deep.include({ service: 'api', policy: 'timed-out', faultHop: 'cart → api' });
    expect(row!.path.map((h) => [h.hop, h.sidecar, h.acted, h.retry.verdict])).to.deep.equal([
      ['cart → api', 'cart', 'route-timeout', 'none-configured'],
      ['front → cart', 'front', 'app', 'none-configured'],
    ]);
    expect(row!.surfaced!.how).to.equal('route timeout 500 ms of route api cut the request after 501 ms');
    expect(row!.explanation).to.equal('api-slow (delay) on cart → api; surfaced at cart → api (sidecar cart) as 504 DI UT: route timeout 500 ms of route api cut the request after 501 ms; retries: none configured on route api');
  });

  it('without the recorded config, says the timeout and that the retry policy is unknown', async () => {
    const [row] = (await recording(false)).attribution.rows;
    expect(row!.surfaced).to.deep.include({ hop: 'cart → api', acted: 'timeout', how: 'a timeout cut the request after 501 ms (the route\'s timeouts are not in the recording)' });
    expect(row!.surfaced!.retry.verdict).to.equal('unknown');
  });
});

describe('attribution of a gRPC error (status 200, grpcStatus UNAVAILABLE) from a hand-made recording', () => {
  const T0 = Date.parse('2026-11-25T10:00:00.000Z');
  const at = (s: number) => T0 + s * 1000;
  const iso = (s: number) => new Date(at(s)).toISOString();

  it('counts it as a failed call, surfaced at the gRPC hop, attributed to the abort like a 503', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faultline-attribution-grpc-'));
    await writeFile(join(dir, 'experiment.yaml'), stringify({
      name: 'payments-unavailable', target: { mesh: 'mesh.yaml' }, load: { entry: 'front', rate: 10 },
      method: [{ at: '0s', duration: '10s', fault: { id: 'pay-unavailable', match: { destination: 'payments' }, at: 'attempt', abort: { grpcStatus: 14 } } }],
    }));
    await writeFile(join(dir, 'journal.json'), JSON.stringify({
      experiment: 'payments-unavailable', file: 'x', seed: 1, status: 'complete', outcome: 'passed', reason: null, startedAt: iso(0), finishedAt: iso(20), target: 'mesh',
      phases: [{ name: 'method', startedAt: iso(0), endedAt: iso(10), outcome: 'done', notes: [] }],
      faults: [{ id: 'pay-unavailable', step: 0, injectedAt: iso(0), removedAt: iso(10), renewals: 0, spec: {} }], halts: [], rollback: null, verdicts: [],
    }));
    await writeFile(join(dir, 'mesh.yaml'), stringify({
      mesh: { name: 'made' },
      services: [
        { name: 'front', endpoints: [{ address: '127.0.0.1:9001' }] },
        { name: 'cart', endpoints: [{ address: '127.0.0.1:9002' }] },
        { name: 'payments', protocol: 'grpc', endpoints: [{ address: '127.0.0.1:9003' }] },
      ],
      routes: [{ name: 'payments', match: { host: 'payments' }, destinations: [{ service: 'payments' }], retries: { attempts: 1, retryOn: ['unavailable'] } }],
    }));
    const done = (sidecar: string, direction: string, source: string, service: string | null, route: string | null, status: number, grpcStatus: number | null, flags: string[], faults: string[], attempts: number, t: number) =>
      ({ type: 'request.done', time: at(t), sidecar, direction, requestId: 'r1', traceId: null, source, service, route, method: 'POST', status, grpcStatus, attempts, flags, faults, durationMs: 5 });
    const events = [
      { type: 'fault.installed', faultId: 'pay-unavailable', time: at(0), sidecar: 'cart' },
      { type: 'fault.applied', time: at(1), sidecar: 'cart', faultId: 'pay-unavailable', action: 'abort', point: 'attempt', source: 'cart', destination: 'payments', requestId: 'r1', attempt: 1 },
      { type: 'fault.applied', time: at(1), sidecar: 'cart', faultId: 'pay-unavailable', action: 'abort', point: 'attempt', source: 'cart', destination: 'payments', requestId: 'r1', attempt: 2 },
      done('cart', 'outbound', 'cart', 'payments', 'payments', 200, 14, ['FI', 'URX'], ['pay-unavailable'], 2, 1.5),
      done('cart', 'inbound', 'front', null, null, 502, null, [], [], 1, 1.51),
      done('front', 'outbound', 'front', 'cart', 'default-cart', 502, null, [], [], 1, 1.52),
      done('front', 'inbound', 'load', null, null, 502, null, [], [], 1, 1.53),
    ];
    await writeFile(join(dir, 'events.ndjson'), events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    await writeFile(join(dir, 'load.ndjson'), `${JSON.stringify({ t: at(1.53), latencyMs: 5, status: 502, cohort: 'all' })}\n`);
    const report = await analyze(await readRun(dir));
    const [row] = report.attribution.rows;
    expect(row).to.deep.include({ faults: ['pay-unavailable'], via: 'trace', service: 'payments', faultHop: 'cart → payments' });
    expect(row!.surfaced).to.deep.include({ hop: 'cart → payments', sidecar: 'cart', status: 200, grpcStatus: 14, acted: 'retry-limit' });
    // The retries did not mask it: the policy check counts the injected aborts and none masked.
    const retries = report.policies.retries.find((r) => r.service === 'payments')!;
    expect(retries).to.deep.include({ injectedAborts: 2, masked: 0 });
  });
});

describe('what a hop\'s policies did, from its request.done and its route', () => {
  const route = snapshotOf({
    mesh: { name: 'hop' },
    services: [{ name: 'payments', endpoints: [{ address: '127.0.0.1:9001' }] }],
    routes: [{ name: 'payments', match: { host: 'payments' }, destinations: [{ service: 'payments' }], timeout: '1s', retries: { attempts: 2, perTryTimeout: '300ms', retryOn: ['5xx'] } }],
  }).routes.find((r) => r.name === 'payments')!;
  const hop = (status: number, flags: string[], attempts: number, durationMs: number) =>
    ({ type: 'request.done', time: 0, sidecar: 'cart', direction: 'outbound', source: 'cart', service: 'payments', route: 'payments', method: 'GET', status, flags, attempts, durationMs });

  it('a caller that left during the third try: the tries outlasted its wait, whatever the per-try timeouts did', () => {
    const h = hop(0, ['DI', 'UT'], 3, 809);
    const { acted, how } = actedAt(h, route, false);
    expect([acted, how]).to.deep.equal(['caller-left', 'the caller left after 809 ms, during try 3 (the per-try timeout 300 ms had cut the tries before): its own timeout or cancellation']);
    expect(retryAt(h, route, acted)).to.deep.equal({ verdict: 'not-retriable', why: 'the caller left during try 3: 3 tries of up to 300 ms outlast the 809 ms the caller waited' });
  });

  it('per-try timeouts until the retries ran out; a spent budget; a breaker\'s refusal', () => {
    expect(actedAt(hop(504, ['UT', 'URX'], 3, 930), route, false).acted).to.equal('retry-limit');
    expect(retryAt(hop(504, ['UT', 'URX'], 3, 930), route, 'retry-limit').verdict).to.equal('limit-reached');
    expect(actedAt(hop(503, ['UBX'], 1, 20), route, false).acted).to.equal('retry-budget');
    expect(retryAt(hop(503, ['UBX'], 1, 20), route, 'retry-budget').verdict).to.equal('budget-spent');
    expect(actedAt(hop(503, ['UO'], 1, 1), route, false).acted).to.equal('breaker');
    expect(retryAt(hop(503, ['UO'], 1, 1), route, 'breaker')).to.deep.equal({ verdict: 'not-retriable', why: 'a refusal by the mesh (503 UO) is not retried' });
    expect(actedAt(hop(503, ['UH'], 1, 1), route, true).acted).to.equal('outlier');
  });
});
