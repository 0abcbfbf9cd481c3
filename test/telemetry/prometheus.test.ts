// A real Prometheus (Debian's package, installed by .ci/run) scrapes two sidecars of a two-hop call;
// PromQL over what it stored must match the load this test sent, and promtool must accept the
// exposition.
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import type { Sidecar } from '../../src/proxy/sidecar.ts';
import { call, send } from '../helpers/client.ts';
import { sidecarEntry, startSidecar } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, waitFor, type Upstream } from '../helpers/net.ts';
import { stopProcess } from '../helpers/process.ts';

const RATE = 40;
const SECONDS = 8;
const APP_DELAY_MS = 20;

describe('metrics in a real Prometheus', function () {
  this.timeout(60_000);
  let app: Upstream;
  let client: Sidecar;
  let server: Sidecar;
  let prometheus: ChildProcess;
  let api: string;

  before(async () => {
    app = await startUpstream('payments');
    app.handler = (_req, res) => void setTimeout(() => res.end('ok'), APP_DELAY_MS);
    const config = {
      mesh: { name: 'prom' },
      services: [{ name: 'checkout', endpoints: [{ address: await freeAddress() }] }, { name: 'payments', endpoints: [{ address: app.address }] }],
      sidecars: [await sidecarEntry('checkout', await freeAddress()), await sidecarEntry('payments', app.address)],
    };
    client = await startSidecar(config, 'checkout');
    server = await startSidecar(config, 'payments');
    const dir = await mkdtemp(join(tmpdir(), 'faultline-prometheus-'));
    await writeFile(join(dir, 'prometheus.yml'), [
      'global: {scrape_interval: 1s, evaluation_interval: 1s}',
      'scrape_configs:',
      `  - job_name: faultline`,
      `    static_configs: [{targets: ["${client.addresses.admin}", "${server.addresses.admin}"]}]`,
      '',
    ].join('\n'));
    api = await freeAddress();
    prometheus = spawn('prometheus', [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=${api}`,
      '--log.level=warn',
    ], { stdio: ['ignore', 'ignore', 'inherit'] });
    await waitFor(async () => (await request(`http://${api}/-/ready`)).statusCode === 200, 20_000, 'Prometheus to be ready');
    // Target discovery reaches the scrape loops in batches (every 5 s): wait until both are scraped.
    await waitFor(async () => (await query('sum(up{job="faultline"})')) === 2, 20_000, 'both sidecars to be scraped');
  });

  after(async () => {
    await stopProcess(prometheus);
    await client.close();
    await server.close();
    await app.close();
  });

  async function query(promql: string, time?: number): Promise<number> {
    const params = new URLSearchParams({ query: promql, ...(time !== undefined && { time: String(time / 1000) }) });
    const response = await request(`http://${api}/api/v1/query?${params}`);
    const body = (await response.body.json()) as { data: { result: { value: [number, string] }[] } };
    const first = body.data.result[0];
    return first ? Number(first.value[1]) : NaN;
  }

  it('answers PromQL that matches the load sent', async () => {
    const started = Date.now();
    let sent = 0;
    // A fixed rate, bounded in count and time.
    for (let i = 0; i < RATE * SECONDS; i++) {
      const due = started + (i * 1000) / RATE;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now())));
      void call(client.addresses.outbound, 'payments').then((r) => r.status === 200 && sent++);
    }
    await waitFor(() => sent === RATE * SECONDS, 10_000, 'every request to be answered');
    const midpoint = started + (SECONDS * 1000) / 2;
    const total = RATE * SECONDS;
    for (const reporter of ['source', 'destination']) {
      await waitFor(async () => (await query(`sum(istio_requests_total{reporter="${reporter}",response_code="200"})`)) === total, 10_000, `the last scrape of the ${reporter} side`);
    }

    expect(await query('sum(istio_requests_total{reporter="source",source_workload="checkout",destination_service="payments",response_code="200"})')).to.equal(total);
    const rate = await query('sum(rate(istio_requests_total{reporter="source",response_code="200"}[4s]))', midpoint);
    expect(rate).to.be.within(RATE * 0.7, RATE * 1.3);
    const median = await query('histogram_quantile(0.5, sum by (le) (rate(istio_request_duration_milliseconds_bucket{reporter="destination"}[4s])))', midpoint);
    expect(median).to.be.within(APP_DELAY_MS / 2, 50);
  });

  it('passes promtool check metrics, but for the unit in the name Istio gave its duration metric', async () => {
    const exposition = (await send(client.addresses.admin, { path: '/metrics' })).text;
    const check = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
    // Exit 1 would be an invalid exposition; 3 is lint findings only.
    expect(check.status, check.stdout + check.stderr).to.be.oneOf([0, 3]);
    const findings = (check.stdout + check.stderr).split('\n').filter(Boolean);
    expect(findings).to.deep.equal(['istio_request_duration_milliseconds use base unit "seconds" instead of "milliseconds"']);
  });
});
