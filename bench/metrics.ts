// `node bench/metrics.ts`: what recording one request in Istio's request metrics costs — prom-client's
// own Counter and Histograms (children cached per label set, as faultline had them) against
// RequestMetrics (plain numbers per label set, handed to prom-client at scrape time) — in one run,
// the same label sets and values, with the exposition of both checked equal at the end.
import { Counter, Histogram, Registry } from 'prom-client';
import { DURATION_BUCKETS_MS, RequestMetrics, SIZE_BUCKETS, type RequestLabels } from '../src/telemetry/request-metrics.ts';

const N = process.argv.includes('--quick') ? 200_000 : 1_000_000;
const names = ['reporter', 'source_workload', 'destination_workload', 'destination_service', 'response_code', 'response_flags', 'request_protocol', 'grpc_response_status'] as const;
const labelSets: RequestLabels[] = ['200', '503', '504'].flatMap((code) => ['source', 'destination'].map((reporter) => ({
  reporter, source_workload: 'cart', destination_workload: 'payments', destination_service: 'payments', response_code: code, response_flags: code === '200' ? '-' : 'URX', request_protocol: 'http', grpc_response_status: '',
})));

function promClient(registry: Registry): (labels: RequestLabels, ms: number, bytes: number) => void {
  const requests = new Counter({ name: 'istio_requests_total', help: 'r', labelNames: names, registers: [registry] });
  const duration = new Histogram({ name: 'istio_request_duration_milliseconds', help: 'd', labelNames: names, buckets: DURATION_BUCKETS_MS, registers: [registry] });
  const requestBytes = new Histogram({ name: 'istio_request_bytes', help: 'q', labelNames: names, buckets: SIZE_BUCKETS, registers: [registry] });
  const responseBytes = new Histogram({ name: 'istio_response_bytes', help: 's', labelNames: names, buckets: SIZE_BUCKETS, registers: [registry] });
  const children = new Map<string, { r: Counter.Internal; d: Histogram.Internal<(typeof names)[number]>; q: Histogram.Internal<(typeof names)[number]>; s: Histogram.Internal<(typeof names)[number]> }>();
  return (labels, ms, bytes) => {
    const key = Object.values(labels).join('\u0000');
    let c = children.get(key);
    if (!c) children.set(key, (c = { r: requests.labels({ ...labels }), d: duration.labels({ ...labels }), q: requestBytes.labels({ ...labels }), s: responseBytes.labels({ ...labels }) }));
    c.r.inc();
    c.d.observe(ms);
    c.q.observe(0);
    c.s.observe(bytes);
  };
}

function time(record: (labels: RequestLabels, ms: number, bytes: number) => void): number {
  for (let i = 0; i < N / 5; i++) record(labelSets[i % labelSets.length]!, i % 300, 64);
  const start = performance.now();
  for (let i = 0; i < N; i++) record(labelSets[i % labelSets.length]!, i % 300, 64);
  return ((performance.now() - start) * 1000) / N;
}

const registries = { prom: new Registry(), ours: new Registry() };
const viaProm = promClient(registries.prom);
const ours = new RequestMetrics(registries.ours);
const rounds: { prom: number[]; ours: number[] } = { prom: [], ours: [] };
for (let round = 0; round < 3; round++) {
  rounds.prom.push(time(viaProm));
  rounds.ours.push(time((labels, ms, bytes) => ours.record(labels.reporter === 'source', labels.source_workload, labels.destination_service, Number(labels.response_code), -1, labels.response_flags, ms, 0, bytes)));
}
/** An exposition with HELP lines dropped and each sample's labels sorted: the same samples compare equal. */
const normalised = async (registry: Registry) => (await registry.metrics())
  .split('\n')
  .filter((line) => !line.startsWith('# HELP'))
  .map((line) => line.replace(/\{(.*)\}/, (_m, labels: string) => `{${labels.split(/,(?=[a-z_]+=")/).sort().join(',')}}`))
  .join('\n');
const same = (await normalised(registries.prom)) === (await normalised(registries.ours));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
process.stdout.write([
  `node ${process.version}; ${N} requests per round, ${labelSets.length} label sets, three rounds each, in turns`,
  '',
  '| recorder | µs per request (rounds) |',
  '|---|---|',
  `| prom-client, cached children | ${rounds.prom.map((r) => r.toFixed(3)).join(', ')} |`,
  `| RequestMetrics | ${rounds.ours.map((r) => r.toFixed(3)).join(', ')} |`,
  '',
  `RequestMetrics: ${(mean(rounds.ours) / mean(rounds.prom)).toFixed(3)}× the time of prom-client per request; expositions ${same ? 'equal' : 'DIFFER'}.`,
  '',
].join('\n'));
