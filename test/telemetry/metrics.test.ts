// /metrics on the admin listener: Istio's request metrics from both reporters of a two-hop call, and
// faultline's own counters and gauges, with values that match the traffic the test sent.
import { expect } from 'chai';
import type { Sidecar } from '../../src/proxy/sidecar.ts';
import { call, send } from '../helpers/client.ts';
import { sidecarEntry, startSidecar } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, type Upstream } from '../helpers/net.ts';

type Sample = { name: string; labels: Record<string, string>; value: number };

function parse(exposition: string): Sample[] {
  return exposition.split('\n').filter((l) => l && !l.startsWith('#')).map((line) => {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)!;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    return { name: match[1]!, labels, value: Number(match[3]) };
  });
}

function value(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

describe('metrics', () => {
  let app: Upstream;
  let client: Sidecar;
  let server: Sidecar;
  let failing = false;

  before(async () => {
    app = await startUpstream('payments');
    app.handler = (_req, res) => res.writeHead(failing ? 503 : 200).end('x');
    const config = {
      mesh: { name: 'metrics' },
      services: [
        { name: 'checkout', endpoints: [{ address: await freeAddress() }] },
        { name: 'payments', endpoints: [{ address: app.address }], circuitBreaker: { consecutiveFailures: 100 } },
      ],
      routes: [{ name: 'pay', match: { host: 'payments' }, destinations: [{ service: 'payments' }], retries: { attempts: 1, retryOn: ['5xx'], backoff: { base: '1ms', max: '1ms' } } }],
      sidecars: [await sidecarEntry('checkout', await freeAddress()), await sidecarEntry('payments', app.address)],
    };
    client = await startSidecar(config, 'checkout');
    server = await startSidecar(config, 'payments');
  });

  after(async () => {
    await client.close();
    await server.close();
    await app.close();
  });

  it('counts requests with Istio names and labels at both reporters, and their durations', async () => {
    for (let i = 0; i < 5; i++) expect((await call(client.addresses.outbound!, 'payments')).status).to.equal(200);
    failing = true;
    expect((await call(client.addresses.outbound!, 'payments')).status).to.equal(503);
    failing = false;
    await call(client.addresses.outbound!, 'nowhere');

    const outbound = parse((await send(client.addresses.admin, { path: '/metrics' })).text);
    const source = { reporter: 'source', source_workload: 'checkout', destination_service: 'payments', destination_workload: 'payments', request_protocol: 'http' };
    expect(value(outbound, 'istio_requests_total', { ...source, response_code: '200', response_flags: '-' })).to.equal(5);
    expect(value(outbound, 'istio_requests_total', { ...source, response_code: '503', response_flags: 'URX' })).to.equal(1);
    expect(value(outbound, 'istio_requests_total', { reporter: 'source', destination_service: 'unknown', response_code: '404', response_flags: 'NR' })).to.equal(1);
    expect(value(outbound, 'istio_request_duration_milliseconds_count', { ...source, response_code: '200' })).to.equal(5);
    expect(value(outbound, 'istio_request_duration_milliseconds_bucket', { ...source, response_code: '200', le: '+Inf' })).to.equal(5);
    expect(value(outbound, 'istio_response_bytes_sum', { ...source, response_code: '200' })).to.equal(5); // 'x' each
    expect(value(outbound, 'istio_request_bytes_count', { ...source, response_code: '200' })).to.equal(5);
    expect(value(outbound, 'istio_request_bytes_sum', { ...source, response_code: '200' })).to.equal(0);
    expect(value(outbound, 'faultline_retries_total', { route: 'pay', destination_service: 'payments', reason: '5xx' })).to.equal(1);
    expect(value(outbound, 'faultline_retries_refused_total', { route: 'pay', response_flags: 'URX' })).to.equal(1);
    expect(value(outbound, 'faultline_endpoint_healthy', { destination_service: 'payments', endpoint: app.address })).to.equal(1);
    expect(value(outbound, 'faultline_breaker_state', { destination_service: 'payments', subset: '' })).to.equal(0);
    expect(value(outbound, 'faultline_retry_budget_remaining', { route: 'pay' })).to.be.a('number');
    expect(value(outbound, 'faultline_config_version_info', { version: client.snapshot.version })).to.equal(1);

    const inbound = parse((await send(server.addresses.admin, { path: '/metrics' })).text);
    const destination = { reporter: 'destination', source_workload: 'checkout', destination_service: 'payments' };
    expect(value(inbound, 'istio_requests_total', { ...destination, response_code: '200', response_flags: '-' })).to.equal(5);
    expect(value(inbound, 'istio_requests_total', { ...destination, response_code: '503' })).to.equal(2); // the try and its retry
  });

  it('serves the Prometheus text format', async () => {
    const reply = await send(client.addresses.admin, { path: '/metrics' });
    expect(reply.headers['content-type']).to.match(/^text\/plain; version=0\.0\.4/);
    expect(reply.text).to.include('# TYPE istio_requests_total counter').and.include('# TYPE istio_request_duration_milliseconds histogram');
  });
});
