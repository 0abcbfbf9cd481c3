// The open-model load against a real upstream on loopback: requests keep starting on schedule while
// the upstream holds every response; latency runs from each request's intended start (a stalled
// generator's lateness is in it); the in-flight cap turns further starts into missed starts, never
// sent; requests still in flight at the end are awaited, then cut and counted apart; the cohort's
// share carries its header.
import { expect } from 'chai';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { stringify } from 'yaml';
import { loadFigures, outcomeOf, type LoadRecord } from '../../../src/experiments/load.ts';
import { OpenModelLoad } from '../../../src/experiments/loads/open-model.ts';
import { parseExperiment } from '../../../src/experiments/spec.ts';
import { waitFor } from '../../helpers/net.ts';

interface Arrival {
  readonly index: number;
  readonly at: number;
  readonly cohort: string | undefined;
}

/** An upstream that notes each request and answers it at once, or (`hold`) only when released. */
async function upstream(hold: boolean) {
  const arrivals: Arrival[] = [];
  const held: ServerResponse[] = [];
  let holding = hold;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    arrivals.push({ index: Number(String(req.headers['x-request-id']).split('-').at(-1)), at: Date.now(), cohort: req.headers['x-faultline-cohort'] as string | undefined });
    req.resume();
    if (holding) held.push(res);
    else res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrivals,
    release: () => {
      holding = false;
      for (const res of held.splice(0)) res.end('ok');
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function experimentAt(url: string, load: Record<string, unknown>) {
  return parseExperiment(stringify({ name: 'open', target: { control: 'http://127.0.0.1:1' }, load: { url, ...load }, method: [{ at: '0s', duration: '1s', fault: { id: 'f', match: { destination: 'front' }, at: 'inbound', percent: 1, abort: { status: 503 } } }] }), 'open.yaml');
}

const indexOf = (r: LoadRecord) => Number(r.requestId!.split('-').at(-1));

describe('open-model load', function () {
  this.timeout(20_000);

  it('keeps starting requests on schedule while the upstream holds every response, timed from their intended starts', async () => {
    const up = await upstream(true);
    try {
      const records: LoadRecord[] = [];
      const running = new OpenModelLoad().run(experimentAt(up.url, { rate: 20 }), { url: up.url }, 3_000, (r) => records.push(r));
      // The upstream answers nothing for 2 s after the first request: 40 were due meanwhile. A closed
      // loop would have sent one per connection and waited; a busy machine may be late with the last few.
      const first = await waitFor(() => up.arrivals[0], 2_000, 'the first request');
      await waitFor(() => Date.now() >= first.at + 2_000, 3_000, 'two seconds of stall');
      const duringStall = up.arrivals.length;
      up.release();
      const run = await running;
      expect(duringStall, 'requests started while none was answered').to.be.within(34, 41);
      expect(records.length).to.equal(60);
      expect(up.arrivals.length).to.equal(60);
      expect(records.every((r) => outcomeOf(r) === 'ok')).to.equal(true);
      // Each latency runs from the request's place in the schedule: t − latency falls on the 50 ms grid.
      const byIndex = new Map(records.map((r) => [indexOf(r), r]));
      const due0 = byIndex.get(0)!.t - byIndex.get(0)!.latencyMs;
      expect(due0).to.equal(run.from);
      for (const [i, r] of byIndex) expect(r.t - r.latencyMs - due0).to.be.closeTo(i * 50, 1e-6);
      // The first waited the whole stall.
      expect(byIndex.get(0)!.latencyMs).to.be.at.least(1_990);
      expect(loadFigures(records, run)).to.deep.include({ model: 'open', sent: 60, ok: 60, failed: 0, cut: 0, missed: 0 });
      expect(loadFigures(records, run).achieved).to.be.closeTo(20, 0.01);
    } finally {
      await up.close();
    }
  });

  it('measures from the intended start when the generator itself was held up', async () => {
    const up = await upstream(false);
    try {
      const records: LoadRecord[] = [];
      const load = new OpenModelLoad();
      const running = load.run(experimentAt(up.url, { rate: 50, cohort: { percent: 25 } }), { url: up.url }, 1_000, (r) => records.push(r));
      // The event loop blocked for 300 ms right after the start: requests due in it are sent late.
      const blockedFrom = Date.now();
      while (Date.now() < blockedFrom + 300) {
        // busy: no timer, no socket runs
      }
      const run = await running;
      expect(records.length).to.equal(50);
      for (const r of records) {
        const due = r.t - r.latencyMs;
        // Sent no earlier than the end of the block, so its latency holds the wait since it was due.
        if (due < blockedFrom + 280) {
          expect(r.latencyMs, `request ${indexOf(r)}`).to.be.at.least(blockedFrom + 300 - due - 1);
          // ... and says how much of it was the generator's own lateness (the first started before the block).
          if (due > blockedFrom) expect(r.lagMs, `request ${indexOf(r)}`).to.be.at.least(blockedFrom + 300 - due - 1);
        }
      }
      expect(loadFigures(records, run).sendLagP99).to.be.at.least(250);
      expect(run.from).to.be.at.most(blockedFrom);
      // The cohort: a quarter of the arrivals, spread evenly, each with the header.
      const experiment = records.filter((r) => r.cohort === 'experiment').map(indexOf).sort((a, b) => a - b);
      expect(experiment).to.deep.equal(Array.from({ length: 12 }, (_, k) => 4 * k + 3));
      expect(up.arrivals.filter((a) => a.cohort === 'experiment').map((a) => a.index).sort((a, b) => a - b)).to.deep.equal(experiment);
      expect(records.filter((r) => r.cohort === 'control').length).to.equal(50 - experiment.length);
    } finally {
      await up.close();
    }
  });

  it('turns starts beyond the in-flight cap into missed starts, and cuts what is still in flight after the drain', async () => {
    const up = await upstream(true);
    try {
      const records: LoadRecord[] = [];
      const started = Date.now();
      const run = await new OpenModelLoad({ drainMs: 200 }).run(experimentAt(up.url, { rate: 20, maxInFlight: 5 }), { url: up.url }, 1_000, (r) => records.push(r));
      expect(Date.now() - started, 'duration + drain, and the cut').to.be.below(3_000);
      expect(up.arrivals.map((a) => a.index).sort((a, b) => a - b)).to.deep.equal([0, 1, 2, 3, 4]);
      const missed = records.filter((r) => outcomeOf(r) === 'missed');
      expect(missed.map((r) => r.t - run.from)).to.deep.equal(Array.from({ length: 15 }, (_, k) => (k + 5) * 50));
      expect(missed.every((r) => r.status === 0 && r.latencyMs === 0)).to.equal(true);
      expect(records.filter((r) => outcomeOf(r) === 'cut').map(indexOf).sort()).to.deep.equal([0, 1, 2, 3, 4]);
      expect(loadFigures(records, run)).to.deep.include({ sent: 5, ok: 0, failed: 0, cut: 5, missed: 15, maxInFlight: 5 });
    } finally {
      await up.close();
    }
  });

  it('stops starting at stop(), waits for what is in flight, and counts none of it as failed', async () => {
    const up = await upstream(true);
    try {
      const records: LoadRecord[] = [];
      const load = new OpenModelLoad({ drainMs: 2_000 });
      const running = load.run(experimentAt(up.url, { rate: 20 }), { url: up.url }, 10_000, (r) => records.push(r));
      await waitFor(() => up.arrivals.length >= 5, 5_000, 'five requests');
      load.stop();
      up.release(); // answered within the drain: ok, not cut
      const run = await running;
      const sent = up.arrivals.length;
      expect(sent).to.be.below(40);
      expect(loadFigures(records, run)).to.deep.include({ sent, ok: sent, failed: 0, cut: 0, missed: 0 });
      expect(run.to - run.from).to.be.below(5_000);
    } finally {
      await up.close();
    }
  });
});
