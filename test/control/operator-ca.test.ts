// `faultline control --ca-cert --ca-key`: identities issued from an operator's CA, not one of its own.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { MeshCa } from '../../src/identity/ca.ts';
import { spiffeId } from '../../src/identity/spiffe.ts';
import { WorkloadKey } from '../../src/identity/workload.ts';
import { freeAddress } from '../helpers/net.ts';
import { CLI, runCli, stopProcess } from '../helpers/process.ts';

describe('control plane with an operator CA', function () {
  this.timeout(20_000);

  it('signs workload certificates with the given CA, and wants its key too', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faultline-opca-'));
    const ca = await MeshCa.create('ops.example');
    const material = ca.material();
    await writeFile(join(dir, 'ca.crt'), material.certPem);
    await writeFile(join(dir, 'ca.key'), material.keyPem, { mode: 0o600 });
    await writeFile(join(dir, 'token'), 'operator-token');
    const app = await freeAddress();
    await writeFile(join(dir, 'mesh.yaml'), stringify({
      mesh: { name: 'ops' },
      mtls: { mode: 'strict', trustDomain: 'ops.example' },
      services: [{ name: 'billing', endpoints: [{ address: app }] }],
      sidecars: [{ service: 'billing', app, outbound: await freeAddress(), inbound: await freeAddress(), admin: await freeAddress() }],
    }));
    const onlyCert = await runCli(['control', '--config', join(dir, 'mesh.yaml'), '--listen', '127.0.0.1:0', '--token-file', join(dir, 'token'), '--ca-cert', join(dir, 'ca.crt')]);
    expect([onlyCert.code, onlyCert.stderr]).to.deep.equal([2, '--ca-cert and --ca-key go together\n']);

    const child = spawn(process.execPath, [CLI, 'control', '--config', join(dir, 'mesh.yaml'), '--listen', '127.0.0.1:0', '--token-file', join(dir, 'token'), '--state-dir', join(dir, 'state'), '--ca-cert', join(dir, 'ca.crt'), '--ca-key', join(dir, 'ca.key')], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, FAULTLINE_LOG_LEVEL: 'warn' } });
    try {
      const line = await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(String(d))));
      const url = (JSON.parse(line) as { control: string }).control;
      const key = await WorkloadKey.generate();
      const response = await request(`${url}/v1/identity`, {
        method: 'POST',
        headers: { authorization: 'Bearer operator-token', 'content-type': 'application/json' },
        body: JSON.stringify({ sidecar: 'billing', csr: await key.csr('billing', spiffeId('ops.example', 'default', 'billing')) }),
      });
      const issued = (await response.body.json()) as { certPem: string; caPem: string };
      expect(issued.caPem).to.equal(material.certPem);
      const cert = new X509Certificate(issued.certPem);
      expect(cert.verify(new X509Certificate(material.certPem).publicKey)).to.equal(true);
      expect(cert.subjectAltName).to.equal('URI:spiffe://ops.example/ns/default/sa/billing');
    } finally {
      await stopProcess(child);
    }
  });
});
