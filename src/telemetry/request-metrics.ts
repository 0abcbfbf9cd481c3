// Istio's request metrics, counted here and handed to the registry only when it is scraped.
// prom-client validates and hashes the label set on every inc() and observe(), even through a cached
// child; per request that was most of what metrics cost. Here a request adds to plain numbers kept per
// label set (found by one string key), and the registry reads them — as prom-client metric objects
// would give them — at scrape time. Exposition, names and labels are unchanged (promtool checks it).
import type { Registry } from 'prom-client';

export const DURATION_BUCKETS_MS = [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000];
export const SIZE_BUCKETS = [0, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

export interface RequestLabels {
  readonly reporter: string;
  readonly source_workload: string;
  readonly destination_workload: string;
  readonly destination_service: string;
  readonly response_code: string;
  readonly response_flags: string;
  readonly request_protocol: string;
  /** Istio's label: the gRPC status as a number ("14"), '' for a request that is not gRPC. */
  readonly grpc_response_status: string;
}

class Distribution {
  readonly bounds: readonly number[];
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    this.sum += value;
    this.count++;
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
}

interface Series {
  readonly labels: RequestLabels;
  /** The label set as record() is given it, to tell whether the next request shares it. */
  readonly outbound: boolean;
  readonly source: string;
  readonly destination: string;
  readonly status: number;
  /** -1: not gRPC. */
  readonly grpc: number;
  readonly flags: string;
  requests: number;
  readonly duration: Distribution;
  readonly requestBytes: Distribution;
  readonly responseBytes: Distribution;
}

type Value = { value: number; labels: Record<string, string | number>; metricName?: string };

/** Series by source, destination, status (with the gRPC status: statusKey) and flags: a request finds its own in four lookups of values it already has, with no key built. */
type Index = Map<string, Map<string, Map<number, Map<string, Series>>>>;

export class RequestMetrics {
  readonly #series: Series[] = [];
  /** By reporter: [source (outbound), destination (inbound)]. */
  readonly #index: [Index, Index] = [new Map(), new Map()];
  /** The last request's series: most requests in a row share its label set, and find it in five comparisons. */
  #last: Series | undefined;

  constructor(registry: Registry) {
    const all = () => this.#series;
    const metric = (name: string, help: string, type: 'counter' | 'histogram', values: () => Value[]) => ({
      name,
      help,
      type,
      aggregator: 'sum',
      get: async () => ({ name, help, type, values: values(), aggregator: 'sum' }),
    });
    const histogram = (name: string, pick: (s: Series) => Distribution) => () =>
      all().flatMap((s) => {
        const d = pick(s);
        if (d.count === 0) return [];
        const values: Value[] = [];
        let cumulative = 0;
        d.bounds.forEach((le, i) => {
          cumulative += d.counts[i]!;
          values.push({ metricName: `${name}_bucket`, labels: { ...s.labels, le }, value: cumulative });
        });
        values.push({ metricName: `${name}_bucket`, labels: { ...s.labels, le: '+Inf' }, value: d.count });
        values.push({ metricName: `${name}_sum`, labels: { ...s.labels }, value: d.sum });
        values.push({ metricName: `${name}_count`, labels: { ...s.labels }, value: d.count });
        return values;
      });
    const register = (m: ReturnType<typeof metric>) => registry.registerMetric(m as unknown as Parameters<Registry['registerMetric']>[0]);
    register(metric('istio_requests_total', 'Requests, by who reports them, source, destination, response code and flags', 'counter', () => all().map((s) => ({ labels: { ...s.labels }, value: s.requests }))));
    register(metric('istio_request_duration_milliseconds', 'Request duration as the reporting proxy saw it, in milliseconds', 'histogram', histogram('istio_request_duration_milliseconds', (s) => s.duration)));
    register(metric('istio_request_bytes', 'Request body sizes, in bytes', 'histogram', histogram('istio_request_bytes', (s) => s.requestBytes)));
    register(metric('istio_response_bytes', 'Response body sizes, in bytes', 'histogram', histogram('istio_response_bytes', (s) => s.responseBytes)));
  }

  /**
   * One request, as a reporter (`outbound`: the source's sidecar) saw it: counted, its duration and
   * sizes observed under its label set; `flags` as in response_flags ('-' for none); `grpc` the gRPC
   * status (0–16), -1 for a request that is not gRPC.
   */
  record(outbound: boolean, source: string, destination: string, status: number, grpc: number, flags: string, durationMs: number, requestBytes: number | null, responseBytes: number): void {
    const last = this.#last;
    const series = last !== undefined && last.status === status && last.grpc === grpc && last.flags === flags && last.destination === destination && last.source === source && last.outbound === outbound
      ? last
      : this.#find(outbound, source, destination, status, grpc, flags);
    series.requests++;
    series.duration.observe(durationMs);
    if (requestBytes !== null) series.requestBytes.observe(requestBytes);
    series.responseBytes.observe(responseBytes);
  }

  /** The series of a label set, made on first use; remembered as the last one found. */
  #find(outbound: boolean, source: string, destination: string, status: number, grpc: number, flags: string): Series {
    const bySource = this.#index[outbound ? 0 : 1];
    let byDestination = bySource.get(source);
    if (!byDestination) bySource.set(source, (byDestination = new Map()));
    let byStatus = byDestination.get(destination);
    if (!byStatus) byDestination.set(destination, (byStatus = new Map()));
    // One number for both statuses: HTTP status × 32 + gRPC status + 1 (gRPC codes are 0–16, -1 for none).
    const key = status * 32 + grpc + 1;
    let byFlags = byStatus.get(key);
    if (!byFlags) byStatus.set(key, (byFlags = new Map()));
    let series = byFlags.get(flags);
    if (!series) {
      const labels: RequestLabels = {
        reporter: outbound ? 'source' : 'destination',
        source_workload: source,
        destination_workload: destination,
        destination_service: destination,
        response_code: String(status),
        response_flags: flags,
        request_protocol: grpc === -1 ? 'http' : 'grpc',
        grpc_response_status: grpc === -1 ? '' : String(grpc),
      };
      series = { labels, outbound, source, destination, status, grpc, flags, requests: 0, duration: new Distribution(DURATION_BUCKETS_MS), requestBytes: new Distribution(SIZE_BUCKETS), responseBytes: new Distribution(SIZE_BUCKETS) };
      byFlags.set(flags, series);
      this.#series.push(series);
    }
    this.#last = series;
    return series;
  }
}
