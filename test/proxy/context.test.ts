// The request context's own shape. Every layer reads it for every request, so it must stay a
// fast-properties object with one shape: an object literal with a getter (as the lazy `query` once
// was) is made in dictionary mode, and its getter's closure is kept alive from the old generation
// until a full collection (docs/benchmarks.md, "Telemetry").
import { expect } from 'chai';
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { parseConfig } from '../../src/config/load.ts';
import { compileSnapshot } from '../../src/config/snapshot.ts';
import { findRoute } from '../../src/proxy/router.ts';
import { Cancellation } from '../../src/http/cancellation.ts';
import { createContext } from '../../src/proxy/context.ts';
import type { ListenerOptions } from '../../src/proxy/listener.ts';
import { EventBus } from '../../src/telemetry/events.ts';
import type { RequestContext } from '../../src/http/types.ts';

setFlagsFromString('--allow-natives-syntax');
const hasFastProperties = new Function('o', 'return %HasFastProperties(o)') as (o: object) => boolean;
const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;

describe('request context', () => {
  it('is a fast-properties object of one shape, whatever the request, and parses its query only when asked', async () => {
    const config = parseConfig(`
mesh: { name: context }
services:
  - { name: checkout, endpoints: [{ address: 127.0.0.1:1 }] }
  - { name: payments, endpoints: [{ address: 127.0.0.1:2 }] }
routes:
  - { name: by-query, match: { host: payments, query: { debug: { exact: "1" } } }, destinations: [{ service: payments }] }
  - { name: rest, match: { host: payments }, destinations: [{ service: payments }] }
sidecars:
  - { name: checkout, service: checkout, outbound: 127.0.0.1:3, inbound: 127.0.0.1:4, admin: 127.0.0.1:5, app: 127.0.0.1:1 }
`);
    const snapshot = compileSnapshot(config, 'test');
    const options: ListenerOptions = {
      direction: 'outbound', sidecar: 'checkout', service: 'checkout', generation: () => { throw new Error('not used'); },
      events: new EventBus('checkout'), tracer: undefined, perRequest: true, limits: snapshot.sidecars[0]!.listeners,
    };
    const contexts: RequestContext[] = [];
    const server = createServer((req: IncomingMessage, res) => {
      contexts.push(createContext(options, snapshot, req, new Cancellation(), undefined));
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      for (const [path, headers] of [['/charge?debug=1', {}], ['/refund', { 'x-request-id': 'r-2', 'x-b3-traceid': 'abc' }], ['/a/b?x=1&y=2', { 'content-length': '0' }]] as const) {
        const status = await new Promise<number | undefined>((resolve, reject) => {
          request({ host: '127.0.0.1', port, path, headers: { host: 'payments', ...headers } }, (res) => resolve(res.resume().statusCode)).on('error', reject).end();
        });
        expect(status).to.equal(200);
      }
    } finally {
      server.close();
    }
    expect(contexts.map((c) => c.pathname)).to.deep.equal(['/charge', '/refund', '/a/b']);
    expect(contexts.map(hasFastProperties), 'fast properties').to.deep.equal([true, true, true]);
    expect(haveSameMap(contexts[0]!, contexts[1]!) && haveSameMap(contexts[1]!, contexts[2]!), 'one shape').to.equal(true);
    // Routes match on the context itself; the query is parsed for the route that asks for it.
    expect(contexts.map((c) => findRoute(c)?.name)).to.deep.equal(['by-query', 'rest', 'rest']);
    expect(contexts[2]!.query.get('y')).to.equal('2');
    contexts[0]!.route = snapshot.routes[0];
    contexts[0]!.attempt = 2;
    expect(hasFastProperties(contexts[0]!), 'still fast once layers set their fields').to.equal(true);
    expect(haveSameMap(contexts[0]!, contexts[1]!), 'and of the same shape').to.equal(true);
  });
});
