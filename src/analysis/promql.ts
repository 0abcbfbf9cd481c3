// The same per-window figures computed by a real Prometheus that scraped the sidecars during the run:
// PromQL over Istio's standard metrics, so a team's existing Prometheus can check (or replace) what the
// recording says. The entry service is measured where its sidecar received the load
// (reporter="destination"); every other service where its callers' sidecars sent it (reporter="source").
import { request } from 'undici';
import type { AnalysisWindow, PrometheusFigures } from './types.ts';

export async function prometheusFigures(url: string, services: readonly string[], entry: string | undefined, windows: readonly AnalysisWindow[]): Promise<PrometheusFigures> {
  const base = url.replace(/\/$/, '');
  const query = async (promql: string, at: number): Promise<number> => {
    const params = new URLSearchParams({ query: promql, time: String(at / 1000) });
    const response = await request(`${base}/api/v1/query?${params}`, { signal: AbortSignal.timeout(10_000) });
    const body = (await response.body.json()) as { status: string; error?: string; data?: { result: { value: [number, string] }[] } };
    if (body.status !== 'success') throw new Error(`Prometheus refused ${promql}: ${body.error ?? response.statusCode}`);
    const first = body.data?.result[0];
    return first ? Number(first.value[1]) : 0;
  };
  const figures = [];
  for (const service of services) {
    const selector = `reporter="${service === entry ? 'destination' : 'source'}",destination_service="${service}"`;
    for (const w of windows) {
      const range = `${Math.max(1, Math.round((w.to - w.from) / 1000))}s`;
      const requests = await query(`sum(increase(istio_requests_total{${selector}}[${range}]))`, w.to);
      const errors = await query(`sum(increase(istio_requests_total{${selector},response_code=~"5..|0"}[${range}]))`, w.to);
      const p99 = await query(`histogram_quantile(0.99, sum by (le) (increase(istio_request_duration_milliseconds_bucket{${selector}}[${range}])))`, w.to);
      // increase() extrapolates, so `requests` is seldom whole: with no errors, 100 − 0 is exactly 100,
      // where 100 × requests ÷ requests can come out 99.99999999999999.
      figures.push({ service, window: w.name, requests, availability: requests > 0 ? 100 - (100 * errors) / requests : null, p99: Number.isFinite(p99) ? p99 : null });
    }
  }
  return { url: base, figures };
}
