// Where a game day's load enters the mesh: the entry's inbound listener as a caller from outside, and
// under strict mTLS (which takes only mesh identities there) the outbound of a client-only sidecar.
import { expect } from 'chai';
import { loadTarget } from '../../../src/experiments/run/preflight.ts';
import { snapshotOf } from '../../helpers/mesh.ts';
import { experiment } from './experiment.ts';

function mesh(mode: 'off' | 'permissive' | 'strict', loadgen: boolean) {
  return snapshotOf({
    mesh: { name: 'entry' },
    mtls: { mode },
    services: [{ name: 'front', endpoints: [{ address: '127.0.0.1:9100' }] }, ...(loadgen ? [{ name: 'loadgen' }] : [])],
    sidecars: [
      { service: 'front', app: '127.0.0.1:9100', outbound: '127.0.0.1:15001', inbound: '127.0.0.1:15006', admin: '127.0.0.1:15000' },
      ...(loadgen ? [{ service: 'loadgen', outbound: '127.0.0.1:15091', admin: '127.0.0.1:15090' }] : []),
    ],
  });
}

describe('load target', () => {
  it('is the entry sidecar\'s inbound listener when the mesh takes plaintext there (mtls off or permissive)', () => {
    for (const mode of ['off', 'permissive'] as const) expect(loadTarget(experiment(), mesh(mode, true)), mode).to.deep.equal({ url: 'http://127.0.0.1:15006', host: 'front' });
  });

  it('under strict mTLS, is the outbound listener of the client-only sidecar, with the entry as host', () => {
    expect(loadTarget(experiment(), mesh('strict', true))).to.deep.equal({ url: 'http://127.0.0.1:15091', host: 'front' });
  });

  it('under strict mTLS without a client-only sidecar, is refused, saying what to declare', () => {
    expect(() => loadTarget(experiment(), mesh('strict', false))).to.throw(/mtls is strict, so front's sidecar takes only callers with a mesh identity; declare a client-only sidecar for the load/);
  });
});
