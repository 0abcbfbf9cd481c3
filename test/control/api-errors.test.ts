// Bad input to the HTTP APIs — a sidecar's admin API and the control plane's — is answered by the
// API's own JSON error, 4xx, naming no internals: alias bombs, bodies over the limit, unparseable
// JSON, unknown routes, and a seeded run of fuzzed documents through the real endpoints.
import { expect } from 'chai';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_MESH } from '../../src/cli/paths.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/control/server.ts';
import type { Sidecar } from '../../src/proxy/sidecar.ts';
import { send, type Reply } from '../helpers/client.ts';
import { sidecarEntry, startSidecar, writeMesh } from '../helpers/mesh.ts';
import { freeAddress } from '../helpers/net.ts';
import { YamlFuzzer } from '../helpers/yaml-fuzz.ts';
import { FAULT_SEEDS } from '../helpers/fuzz-parsers.ts';

const TOKEN = 'api-errors-token';

/** A JSON error of the API: a message, no stack, no server paths. */
function expectJsonError(reply: Reply, status: number): Record<string, unknown> {
  expect(reply.status, reply.text.slice(0, 500)).to.equal(status);
  expect(reply.headers['content-type']).to.match(/^application\/json/);
  const body = reply.json();
  expect(body.error).to.be.a('string').and.not.empty;
  expect(reply.text).to.not.match(/\n\s+at |node_modules|\/src\//);
  return body;
}

describe('API errors', function () {
  this.timeout(60_000);
  let sidecar: Sidecar;
  let control: RunningControlPlane;
  let dir: string;
  let config: Record<string, unknown>;
  const bomb = new YamlFuzzer('bomb', FAULT_SEEDS).aliasBomb();

  const admin = (method: string, path: string, body?: string | Buffer, type = 'application/yaml') =>
    send(sidecar.addresses.admin, { method, path, headers: { 'content-type': type }, ...(body !== undefined && { body }) });
  const api = (method: string, path: string, body?: string | Buffer, type = 'application/yaml') =>
    send(control.url.replace('http://', ''), { method, path, headers: { 'content-type': type, authorization: `Bearer ${TOKEN}` }, ...(body !== undefined && { body }) });

  before(async () => {
    config = {
      mesh: { name: 'api-errors' },
      services: [{ name: 'client', endpoints: [{ address: await freeAddress() }] }, { name: 'payments', endpoints: [{ address: await freeAddress() }] }],
      sidecars: [await sidecarEntry('client', await freeAddress())],
    };
    sidecar = await startSidecar(config, 'client');
    dir = await mkdtemp(join(tmpdir(), 'faultline-api-errors-'));
    control = await startControlPlane({ listen: await freeAddress(), token: TOKEN, stateDir: dir, configFile: await writeMesh(config) });
  });

  after(async () => {
    await sidecar?.close();
    await control?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('an alias bomb is a 400 with the position of its first alias, on every PUT', async () => {
    for (const reply of [await admin('PUT', '/faults/x', bomb), await api('PUT', '/faults/x', bomb), await api('PUT', '/config', bomb)]) {
      const body = expectJsonError(reply, 400);
      expect(body.problems).to.have.length(1);
      expect((body.problems as Record<string, unknown>[])[0]).to.include({ line: 2, field: '' });
    }
  });

  it('a body over the limit is a 413 that says the limit', async () => {
    const big = Buffer.alloc(2 * 1024 * 1024, 'a');
    for (const reply of [await admin('PUT', '/faults/x', big), await api('PUT', '/faults/x', big)]) {
      const body = expectJsonError(reply, 413);
      expect(body).to.include({ code: 'FL_BODY_TOO_LARGE' });
      expect(body.error).to.include('65536 bytes');
    }
    const body = expectJsonError(await api('PUT', '/config', Buffer.alloc(5 * 1024 * 1024, 'a')), 413);
    expect(body.error).to.include(`${4 * 1024 * 1024} bytes`);
  });

  it('unparseable JSON, a malformed path and an unknown route are JSON errors too', async () => {
    expect(expectJsonError(await api('POST', '/halt', '{"by": ', 'application/json'), 400)).to.include({ code: 'FL_BAD_REQUEST' });
    expectJsonError(await admin('GET', '/faults/%E0%A4%A'), 400);
    expect(expectJsonError(await admin('GET', '/nowhere'), 404)).to.include({ code: 'FL_NOT_FOUND' });
    expect(expectJsonError(await api('DELETE', '/config'), 404)).to.include({ code: 'FL_NOT_FOUND' });
  });

  it('fuzzed faults and configs through the real endpoints: never a 500, always JSON', async () => {
    const faults = new YamlFuzzer('http-faults', FAULT_SEEDS);
    const configs = new YamlFuzzer('http-config', [await readFile(DEMO_MESH, 'utf8')]);
    for (let i = 0; i < 150; i++) {
      const fault = faults.next();
      for (const reply of [await admin('PUT', '/faults/slow', fault), await api('PUT', '/faults/slow', fault), await api('PUT', '/config', configs.next())]) {
        expect(reply.status, reply.text.slice(0, 500)).to.be.below(500);
        expect(reply.headers['content-type']).to.match(/^application\/json/);
      }
      sidecar.faults.deleteAll();
      control.plane.faults.deleteAll();
    }
  });
});
