// Request metrics counted per label set: a request that shares the last one's labels reuses its
// series, one that does not finds (or makes) its own — so alternating label sets count apart.
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { RequestMetrics } from '../../src/telemetry/request-metrics.ts';

async function counts(registry: Registry): Promise<Record<string, number>> {
  const text = await registry.getSingleMetricAsString('istio_requests_total');
  return Object.fromEntries(text.split('\n').filter((l) => l.startsWith('istio_requests_total{')).map((l) => {
    const labels = Object.fromEntries([...l.matchAll(/(\w+)="([^"]*)"/g)].map(([, k, v]) => [k, v]));
    const grpc = labels.grpc_response_status ? ` grpc=${labels.grpc_response_status}/${labels.request_protocol}` : '';
    return [`${labels.reporter} ${labels.source_workload}>${labels.destination_service} ${labels.response_code} ${labels.response_flags}${grpc}`, Number(l.split(' ').at(-1))];
  }));
}

describe('request metrics', () => {
  it('counts each label set apart, whether or not a request shares the last one', async () => {
    const registry = new Registry();
    const metrics = new RequestMetrics(registry);
    const sequence: [boolean, string, string, number, string, number?][] = [
      [true, 'checkout', 'payments', 200, '-'],
      [true, 'checkout', 'payments', 200, '-'],
      [true, 'checkout', 'payments', 503, '-'],
      [true, 'checkout', 'payments', 503, 'URX'],
      [true, 'checkout', 'payments', 200, '-'],
      [false, 'checkout', 'payments', 200, '-'],
      [true, 'checkout', 'ledger', 200, '-'],
      [true, 'frontend', 'payments', 200, '-'],
      [true, 'checkout', 'payments', 200, '-'],
      // gRPC: the same HTTP status apart by gRPC status (a gRPC error rides on 200).
      [true, 'checkout', 'payments', 200, '-', 0],
      [true, 'checkout', 'payments', 200, '-', 14],
      [true, 'checkout', 'payments', 200, '-', 14],
      [true, 'checkout', 'payments', 200, '-', 0],
    ];
    for (const [outbound, source, destination, status, flags, grpc] of sequence) metrics.record(outbound, source, destination, status, grpc ?? -1, flags, 3, 0, 10);
    expect(await counts(registry)).to.deep.equal({
      'source checkout>payments 200 - grpc=0/grpc': 2,
      'source checkout>payments 200 - grpc=14/grpc': 2,
      'source checkout>payments 200 -': 4,
      'source checkout>payments 503 -': 1,
      'source checkout>payments 503 URX': 1,
      'destination checkout>payments 200 -': 1,
      'source checkout>ledger 200 -': 1,
      'source frontend>payments 200 -': 1,
    });
    const sum = await registry.getSingleMetricAsString('istio_response_bytes');
    expect(sum).to.match(/istio_response_bytes_sum\{reporter="source",source_workload="checkout",destination_workload="payments",destination_service="payments",response_code="200",response_flags="-",request_protocol="http",grpc_response_status=""\} 40/);
  });
});
