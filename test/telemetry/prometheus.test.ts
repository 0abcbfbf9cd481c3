// A real Prometheus (Debian's package, installed by .ci/run) scrapes two sidecars of a two-hop call;
// PromQL over what it stored must match the load this test sent, and promtool must accept the
// exposition.
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
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

/**
 * The load, and the gate Prometheus scrapes the client sidecar through: a scrape is held until no
 * request is in flight, and no request starts while a scrape waits, so each sample Prometheus stores
 * is exactly the count of requests answered when it was taken, however the machine paces things.
 */
class ScrapeGate {
  answered = 0;
  /** The count of answered requests at each scrape, in order. */
  readonly counts: number[] = [];
  #inFlight = 0;
  #scraping = 0;
  #waiters: { ready: () => boolean; resolve: () => void }[] = [];
  readonly server: Server;

  constructor(admin: string) {
    this.server = createServer(async (req, res) => {
      this.#scraping++;
      await this.#until(() => this.#inFlight === 0);
      this.counts.push(this.answered);
      const reply = await send(admin, { path: req.url });
      res.writeHead(reply.status, { 'content-type': String(reply.headers['content-type']) }).end(reply.text);
      this.#scraping--;
      this.#wake();
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const address = this.server.address() as { port: number };
    return `127.0.0.1:${address.port}`;
  }

  /** Sends one request once no scrape is waiting; resolves when it is answered. */
  async call(address: string): Promise<void> {
    await this.#until(() => this.#scraping === 0);
    this.#inFlight++;
    try {
      if ((await call(address, 'payments')).status === 200) this.answered++;
    } finally {
      this.#inFlight--;
      this.#wake();
    }
  }

  #until(ready: () => boolean): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ ready, resolve }));
  }

  #wake(): void {
    const waiting = this.#waiters;
    this.#waiters = waiting.filter((w) => !w.ready());
    for (const w of waiting) if (!this.#waiters.includes(w)) w.resolve();
  }
}

describe('metrics in a real Prometheus', function () {
  this.timeout(60_000);
  let app: Upstream;
  let client: Sidecar;
  let server: Sidecar;
  let prometheus: ChildProcess;
  let api: string;
  let gate: ScrapeGate;

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
    gate = new ScrapeGate(client.addresses.admin);
    const gated = await gate.listen();
    const dir = await mkdtemp(join(tmpdir(), 'faultline-prometheus-'));
    await writeFile(join(dir, 'prometheus.yml'), [
      'global: {scrape_interval: 1s, evaluation_interval: 1s}',
      'scrape_configs:',
      `  - job_name: faultline`,
      `    static_configs: [{targets: ["${gated}", "${server.addresses.admin}"]}]`,
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
    await new Promise((resolve) => gate.server.close(resolve));
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

  /** The samples of one series over `seconds` up to `time`: [epoch ms, value]. */
  async function samples(selector: string, seconds: number, time: number): Promise<[number, number][]> {
    const params = new URLSearchParams({ query: `${selector}[${seconds}s]`, time: String(time / 1000) });
    const response = await request(`http://${api}/api/v1/query?${params}`);
    const body = (await response.body.json()) as { data: { result: { values: [number, string][] }[] } };
    expect(body.data.result, selector).to.have.length(1);
    return body.data.result[0]!.values.map(([t, v]) => [t * 1000, Number(v)]);
  }

  it('answers PromQL that matches the load sent', async () => {
    const started = Date.now();
    // About RATE a second for SECONDS, paced by timers: what Prometheus stores is checked against
    // what the gate counted at each scrape, not against this pace, which a busy machine bends.
    const load: Promise<void>[] = [];
    for (let i = 0; i < RATE * SECONDS; i++) {
      const due = started + (i * 1000) / RATE;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now())));
      load.push(gate.call(client.addresses.outbound!));
    }
    await Promise.all(load);
    const total = RATE * SECONDS;
    expect(gate.answered).to.equal(total);
    const midpoint = started + (Date.now() - started) / 2;
    for (const reporter of ['source', 'destination']) {
      await waitFor(async () => (await query(`sum(istio_requests_total{reporter="${reporter}",response_code="200"})`)) === total, 10_000, `the last scrape of the ${reporter} side`);
    }

    const source = 'istio_requests_total{reporter="source",source_workload="checkout",destination_service="payments",response_code="200"}';
    expect(await query(source)).to.equal(total);
    // Every sample stored is a count of answered requests the gate saw at a scrape, rising, and the
    // counter was exposed as the load went (samples between none and all), not only at its end.
    const stored = (await samples(source, Math.ceil((Date.now() - started) / 1000) + 5, Date.now())).map(([, v]) => v);
    const seen = new Set(gate.counts);
    expect(stored.filter((v) => !seen.has(v)), `stored ${stored.join(' ')}; at scrapes ${gate.counts.join(' ')}`).to.deep.equal([]);
    expect(stored).to.deep.equal([...stored].sort((a, b) => a - b));
    expect(stored.filter((v) => v > 0 && v < total).length).to.be.at.least(2);
    // rate() over 4 s at the middle of the run is what those samples give: their increase over the
    // window, extrapolated (as Prometheus does) to no more than the window and no less than them.
    const window = await samples(source, 4, midpoint);
    const [[t0, v0], [t1, v1]] = [window[0]!, window.at(-1)!];
    expect(v1 - v0).to.be.above(0);
    const rate = await query(`sum(rate(${source}[4s]))`, midpoint);
    expect(rate).to.be.within((v1 - v0) / 4 - 1e-9, ((v1 - v0) * 1000) / (t1 - t0) + 1e-9);
    // The app answers after 20 ms; the bound above only catches a unit slip (seconds or µs: 1000×).
    const median = await query('histogram_quantile(0.5, sum by (le) (rate(istio_request_duration_milliseconds_bucket{reporter="destination"}[4s])))', midpoint);
    expect(median).to.be.within(APP_DELAY_MS / 2, 1_000);
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
