// Preflight waits, with a deadline, for every sidecar to say it is ready on the current config: a mesh
// just brought up may not have acknowledged its first state when the game day asks (a race seen with
// `target: {mesh}`), and a sidecar that is gone fails the preflight once the deadline passes, naming it.
import { expect } from 'chai';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startControlledSidecar, type ControlledSidecar } from '../../../src/control/agent.ts';
import { startControlPlane, type RunningControlPlane } from '../../../src/control/server.ts';
import { MeshClient } from '../../../src/experiments/mesh-client.ts';
import { preflight } from '../../../src/experiments/run/preflight.ts';
import { parseExperiment } from '../../../src/experiments/spec.ts';
import { freeAddress, waitFor } from '../../helpers/net.ts';

const TOKEN = 'preflight-token';

describe('preflight', function () {
  this.timeout(20_000);
  let control: RunningControlPlane;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'faultline-preflight-'));
    await writeFile(join(dir, 'mesh.yaml'), stringify({ mesh: { name: 'pre' }, services: [{ name: 'web' }] }));
    control = await startControlPlane({ listen: await freeAddress(), token: TOKEN, stateDir: join(dir, 'control'), configFile: join(dir, 'mesh.yaml') });
  });

  after(() => control.close());

  const experiment = () => parseExperiment(stringify({ name: 'pre', target: { control: control.url }, load: { url: 'http://127.0.0.1:1', rate: 1 }, method: [{ at: '0s', duration: '1s', fault: { id: 'f', match: { destination: 'web' }, abort: { status: 503 } } }] }), 'pre.yaml');

  let sidecar: ControlledSidecar | undefined;
  after(() => sidecar?.close());

  it('passes as soon as a sidecar that has just started has acknowledged the current config', async () => {
    sidecar = await startControlledSidecar({ url: control.url, token: TOKEN, stateDir: join(dir, 's-web'), waitMs: 5_000, join: { service: 'web', name: 'web-1', outbound: await freeAddress(), admin: await freeAddress() } });
    const notes: string[] = [];
    // Right after its start: its first acknowledgement may still be on its way; preflight waits for it.
    await preflight(experiment(), new MeshClient(control.url, TOKEN), control.plane.state.version, async (n) => void notes.push(n));
    expect(notes[0]).to.equal(`preflight: 1 sidecars ready on version ${control.plane.state.version}`);
  });

  it('judges the sidecars against the state in force now, not the version the run read before (instances registering meanwhile make new ones)', async () => {
    const notes: string[] = [];
    await preflight(experiment(), new MeshClient(control.url, TOKEN), 'a-version-replaced-since', async (n) => void notes.push(n), 300);
    expect(notes[0]).to.equal(`preflight: 1 sidecars ready on version ${control.plane.state.version}`);
  });

  it('fails once its deadline has passed when a sidecar is not ready, naming it', async () => {
    // Its watch closed without leaving (a sidecar cut off): listed, disconnected.
    await sidecar!.client.close();
    await waitFor(async () => (await new MeshClient(control.url, TOKEN).sidecars()).sidecars.some((s) => !s.connected), 5_000, 'the sidecar to be seen disconnected');
    const started = Date.now();
    const error = await preflight(experiment(), new MeshClient(control.url, TOKEN), control.plane.state.version, async () => undefined, 300).then(() => undefined, (e: Error) => e);
    expect(error?.message).to.equal(`not every sidecar is ready on the current config after 300 ms: web-1 (disconnected, version ${control.plane.state.version})`);
    expect(Date.now() - started).to.be.at.least(300);
  });

  it('fails when no sidecar is connected', async () => {
    await sidecar!.close();
    sidecar = undefined;
    // Forgotten once it says it leaves (its client was closed before: say it now).
    control.plane.forget('web-1');
    const error = await preflight(experiment(), new MeshClient(control.url, TOKEN), control.plane.state.version, async () => undefined, 200).then(() => undefined, (e: Error) => e);
    expect(error?.message).to.equal('no sidecar is connected to the control plane (waited 200 ms)');
  });
});
