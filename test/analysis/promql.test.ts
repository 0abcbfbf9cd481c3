// The PromQL path: a real Prometheus (Debian's, installed by .ci/run) scrapes the sidecar of a small
// mesh during a short game day; the report's window figures computed with PromQL must agree with the
// ones computed from the recording.
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { up, type Mesh } from '../../src/control/up.ts';
import { runExperiment } from '../../src/experiments/runner.ts';
import { writeReports } from '../../src/reports/write.ts';
import { freeAddress, waitFor } from '../helpers/net.ts';
import { stopProcess } from '../helpers/process.ts';

const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;

describe('report figures from PromQL against a real Prometheus', function () {
  this.timeout(90_000);
  let mesh: Mesh;
  let dir: string;
  let prometheus: ChildProcess;
  let api: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'faultline-promql-'));
    await writeFile(join(dir, 'app.mjs'), "import { createServer } from 'node:http'; process.stdin.on('close', () => process.exit(0)); createServer((q, s) => setTimeout(() => s.end('ok'), 5)).listen(Number(process.env.PORT), '127.0.0.1');\n");
    const app = await freeAddress();
    const admin = await freeAddress();
    await writeFile(join(dir, 'mesh.yaml'), stringify({
      mesh: { name: 'promql' },
      services: [{ name: 'front', endpoints: [{ address: app }] }],
      sidecars: [{ service: 'front', app, outbound: await freeAddress(), inbound: await freeAddress(), admin, command: ['node', 'app.mjs'] }],
    }));
    mesh = await up({ file: join(dir, 'mesh.yaml'), listen: '127.0.0.1:0', stateDir: join(dir, 'state') });
    await writeFile(join(dir, 'token'), mesh.token);
    await writeFile(join(dir, 'prometheus.yml'), `global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: faultline\n    static_configs: [{targets: ["${admin}"]}]\n`);
    api = await freeAddress();
    prometheus = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=${api}`, '--log.level=warn'], { stdio: ['ignore', 'ignore', 'inherit'] });
    await waitFor(async () => (await request(`http://${api}/-/ready`).catch(() => ({ statusCode: 0 }))).statusCode === 200, 20_000, 'Prometheus to be ready');
    await waitFor(async () => (await query('sum(up{job="faultline"})')) === 1, 20_000, 'the sidecar to be scraped');
  });

  async function query(promql: string): Promise<number> {
    const response = await request(`http://${api}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await response.body.json()) as { data: { result: { value: [number, string] }[] } };
    return Number(body.data.result[0]?.value[1]);
  }

  after(async () => {
    await stopProcess(prometheus);
    await mesh.close();
  });

  it('agrees with the recording on requests and availability per window', async () => {
    const file = join(dir, 'gameday.yaml');
    await writeFile(file, stringify({
      name: 'promql-check',
      target: { control: mesh.control.url, tokenFile: join(dir, 'token') },
      load: { entry: 'front', rate: 50, connections: 4 },
      phases: { warmup: '1s', baseline: '4s', recovery: '3s' },
      method: [{ at: '0s', duration: '5s', fault: { id: 'front-errors', match: { destination: 'front' }, at: 'inbound', percent: 30, seed: 3, abort: { status: 503 } } }],
    }));
    const run = await runExperiment({ file, out: join(dir, 'reports'), stream: quiet });
    expect(run.outcome).to.equal('passed');
    // Prometheus has the whole run once it has scraped the sidecar after the run's end (up's sample
    // is stamped with the scrape's time): waited for, however late that scrape comes.
    const ended = Date.now();
    await waitFor(async () => (await query('max(timestamp(up{job="faultline"}))')) * 1000 > ended, 20_000, 'a scrape after the run');
    const { analysis } = await writeReports(run.dir, { prometheus: `http://${api}` });
    const fault = analysis.services.find((s) => s.service === 'front' && s.window === 'front-errors')!;
    const promFault = analysis.prometheus!.figures.find((f) => f.service === 'front' && f.window === 'front-errors')!;
    expect(fault.requests).to.be.above(150);
    expect(promFault.requests).to.be.within(fault.requests * 0.8, fault.requests * 1.2);
    expect(promFault.availability!).to.be.within(fault.availability - 8, fault.availability + 8);
    expect(fault.availability).to.be.within(60, 80);
    const promBaseline = analysis.prometheus!.figures.find((f) => f.window === 'baseline')!;
    expect(promBaseline.availability).to.equal(100);
    expect(await readFile(join(run.dir, 'report.md'), 'utf8')).to.include(`## The same windows from PromQL (http://${api})`);
  });
});
