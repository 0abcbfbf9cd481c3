// `faultline up` and `faultline control` / `sidecar --control` as processes: up brings up the control
// plane, the sidecars and the apps with a command, prints its table, serves through the mesh, and on
// SIGINT stops all of it (a gRPC app too, waited for by its HTTP/2 handshake); the control and sidecar
// commands refuse to run without a token.
import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { call } from '../helpers/client.ts';
import { freeAddress, waitFor } from '../helpers/net.ts';
import { CLI, runCli } from '../helpers/process.ts';

describe('faultline up', function () {
  this.timeout(30_000);

  it('brings up control plane, sidecars and apps; serves; stops everything on SIGINT', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faultline-up-'));
    const app = await freeAddress();
    // A one-line app: answers its port's requests with its name.
    await writeFile(join(dir, 'app.mjs'), "import { createServer } from 'node:http'; process.stdin.on('close', () => process.exit(0)); createServer((q, s) => s.end('hello from ' + process.env.PORT)).listen(Number(process.env.PORT), '127.0.0.1');\n");
    const client = { service: 'client', outbound: await freeAddress(), inbound: await freeAddress(), admin: await freeAddress(), app: await freeAddress() };
    const config = {
      mesh: { name: 'up' },
      services: [{ name: 'client', endpoints: [{ address: client.app }] }, { name: 'hello', endpoints: [{ address: app }], healthCheck: { path: '/', interval: '200ms' } }],
      sidecars: [client, { service: 'hello', outbound: await freeAddress(), inbound: await freeAddress(), admin: await freeAddress(), app, command: ['node', 'app.mjs'] }],
    };
    await writeFile(join(dir, 'mesh.yaml'), stringify(config));
    const child = spawn(process.execPath, [CLI, 'up', join(dir, 'mesh.yaml'), '--listen', '127.0.0.1:0', '--state-dir', join(dir, 'state')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    await waitFor(() => out.includes('ready;'), 20_000, `up to be ready (output: ${out})`);
    expect(out).to.match(/^hello +hello +127\.0\.0\.1:\d+/m);
    expect((await call(client.outbound, 'hello')).text).to.equal(`hello from ${app.split(':')[1]}`);
    // The token up made is in the state directory, 0600, and opens the control plane's API.
    const url = /control plane +(http:\/\/\S+)/.exec(out)![1]!;
    const token = (await readFile(join(dir, 'state', 'token'), 'utf8')).trim();
    const sidecars = await request(`${url}/sidecars`, { headers: { authorization: `Bearer ${token}` } });
    expect(((await sidecars.body.json()) as { sidecars: { name: string; connected: boolean }[] }).sidecars.map((s) => [s.name, s.connected])).to.deep.equal([['client', true], ['hello', true]]);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGINT');
    expect(await exited).to.equal(0);
    await waitFor(async () => {
      try {
        await call(app, 'hello');
        return false;
      } catch {
        return true;
      }
    }, 5_000, 'the app to be stopped');
  });

  it('waits for a gRPC app (no /healthz to GET) by its HTTP/2 handshake, then carries a grpc-js call to it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faultline-up-grpc-'));
    const app = await freeAddress();
    const method = "{ path: '/test.Hello/Hello', requestStream: false, responseStream: false, requestSerialize: (b) => b, requestDeserialize: (b) => b, responseSerialize: (b) => b, responseDeserialize: (b) => b }";
    await writeFile(join(dir, 'app.mjs'), [
      `import grpc from '${import.meta.resolve('@grpc/grpc-js')}';`,
      "process.stdin.on('close', () => process.exit(0)).resume();",
      'const server = new grpc.Server();',
      `server.addService({ Hello: ${method} }, { Hello: (call, reply) => reply(null, Buffer.from('hello from ' + process.env.PORT)) });`,
      "server.bindAsync('127.0.0.1:' + process.env.PORT, grpc.ServerCredentials.createInsecure(), () => {});",
    ].join('\n'));
    const client = { service: 'client', outbound: await freeAddress(), inbound: await freeAddress(), admin: await freeAddress(), app: await freeAddress() };
    const config = {
      mesh: { name: 'up-grpc' },
      services: [{ name: 'client', endpoints: [{ address: client.app }] }, { name: 'hello', protocol: 'grpc', endpoints: [{ address: app }] }],
      sidecars: [client, { service: 'hello', outbound: await freeAddress(), inbound: await freeAddress(), admin: await freeAddress(), app, command: ['node', 'app.mjs'] }],
    };
    await writeFile(join(dir, 'mesh.yaml'), stringify(config));
    const child = spawn(process.execPath, [CLI, 'up', join(dir, 'mesh.yaml'), '--listen', '127.0.0.1:0', '--state-dir', join(dir, 'state')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const stub = new grpc.Client(client.outbound, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'hello' });
    try {
      await waitFor(() => out.includes('ready;'), 20_000, `up to be ready (output: ${out})`);
      const bytes = (b: Buffer) => b;
      const reply = await new Promise<Buffer>((resolve, reject) =>
        stub.makeUnaryRequest('/test.Hello/Hello', bytes, bytes, Buffer.from('hi'), new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (error, value) => (error ? reject(error) : resolve(value!))));
      expect(reply.toString()).to.equal(`hello from ${app.split(':')[1]}`);
    } finally {
      stub.close();
      child.kill('SIGINT');
      expect(await exited).to.equal(0);
    }
  });

  it('control and sidecar --control refuse to start without a token', async () => {
    const env = { ...process.env, FAULTLINE_TOKEN: '' };
    const control = await runCli(['control', '--listen', '127.0.0.1:0'], 15_000, env);
    expect([control.code, control.stderr]).to.deep.equal([2, 'a token is required: --token-file FILE or FAULTLINE_TOKEN\n']);
    const sidecar = await runCli(['sidecar', '--control', 'http://127.0.0.1:1', '--service', 'x'], 15_000, env);
    expect(sidecar.code).to.equal(2);
  });
});
