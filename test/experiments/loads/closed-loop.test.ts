// The closed-loop load (`load.model: closed`) against an upstream that holds every response: it sends
// one request per connection and waits (why it is not the default for verdicts), and the requests its
// own stop drops are no failures of the system.
import { expect } from 'chai';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { stringify } from 'yaml';
import { loadFigures, type LoadRecord } from '../../../src/experiments/load.ts';
import { ClosedLoopLoad } from '../../../src/experiments/loads/closed-loop.ts';
import { parseExperiment } from '../../../src/experiments/spec.ts';
import { waitFor } from '../../helpers/net.ts';

describe('closed-loop load', function () {
  this.timeout(20_000);

  it('waits on a stalled upstream, and records no failure for what its stop drops', async () => {
    const held: ServerResponse[] = [];
    const server = createServer((req, res) => {
      req.resume();
      held.push(res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const experiment = parseExperiment(stringify({ name: 'closed', target: { control: 'http://127.0.0.1:1' }, load: { url, rate: 20, model: 'closed', connections: 4 }, method: [{ at: '0s', duration: '1s', fault: { id: 'f', match: { destination: 'front' }, at: 'inbound', percent: 1, abort: { status: 503 } } }] }), 'closed.yaml');
      const records: LoadRecord[] = [];
      const load = new ClosedLoopLoad();
      const running = load.run(experiment, { url }, 10_000, (r) => records.push(r));
      await waitFor(() => held.length >= 4, 5_000, 'a request on each connection');
      // A second on: at 20/s an open model would have sent 20 more; this one waits on its 4.
      const t = Date.now();
      await waitFor(() => Date.now() >= t + 1_000, 2_000, 'a second');
      expect(held.length).to.equal(4);
      load.stop();
      const run = await running;
      expect(run.model).to.equal('closed');
      expect(loadFigures(records, run)).to.deep.include({ ok: 0, failed: 0, missed: 0, maxInFlight: null });
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
