// Header hygiene at a hop: what withoutHopByHop drops, on the usual Connection values (read without parsing) and on lists.
import { expect } from 'chai';
import { withoutHopByHop } from '../../src/http/headers.ts';

describe('http: withoutHopByHop', () => {
  it('drops the hop-by-hop headers and keeps the rest, with the usual Connection values', () => {
    for (const connection of ['keep-alive', 'Keep-Alive', 'close', 'upgrade']) {
      const out = withoutHopByHop({ connection, 'keep-alive': 'timeout=5', 'transfer-encoding': 'chunked', 'x-end-to-end': 'kept', host: 'a' });
      expect(out, connection).to.deep.equal({ 'x-end-to-end': 'kept', host: 'a' });
    }
  });

  it('drops the headers a Connection list names, whatever their case and spacing', () => {
    const out = withoutHopByHop({ connection: 'Keep-Alive,  X-Hop ,x-other', 'x-hop': 'secret', 'x-other': 'too', 'x-end-to-end': 'kept' });
    expect(out).to.deep.equal({ 'x-end-to-end': 'kept' });
  });

  it('keeps Connection and Upgrade for a protocol upgrade, and still drops what the list names', () => {
    const out = withoutHopByHop({ connection: 'Upgrade, x-hop', upgrade: 'websocket', 'x-hop': 'secret', host: 'a' }, true);
    expect(out).to.deep.equal({ connection: 'Upgrade, x-hop', upgrade: 'websocket', host: 'a' });
  });

  it('returns a copy: the headers given are not changed', () => {
    const headers = { connection: 'close', 'x-a': '1' };
    withoutHopByHop(headers);
    expect(headers).to.deep.equal({ connection: 'close', 'x-a': '1' });
  });
});
