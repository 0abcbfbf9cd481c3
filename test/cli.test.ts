// The faultline command: validate (exit 2 with every problem on invalid config), schema, and a
// sidecar that cannot start says why.
import { expect } from 'chai';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXAMPLE } from './config/load.test.ts';
import { runCli } from './helpers/process.ts';

describe('faultline CLI', () => {
  const file = join(tmpdir(), `faultline-cli-${process.pid}.yaml`);

  it('validate: prints the version of a valid file and exits 0', async () => {
    await writeFile(file, EXAMPLE);
    const run = await runCli(['validate', file]);
    expect(run.code).to.equal(0);
    expect(run.stdout).to.match(/valid \(version [0-9a-f]{16}, 2 services, 2 routes, 1 sidecars\)/);
  });

  it('validate: exits 2 and prints every problem with file, line and field', async () => {
    await writeFile(file, EXAMPLE.replace('weight: 90', 'weight: heavy').replace('interval: 1s, timeout', 'interval: x, timeout'));
    const run = await runCli(['validate', file]);
    expect(run.code).to.equal(2);
    expect(run.stderr).to.include('FL_CONFIG_INVALID: 2 problems');
    expect(run.stderr).to.include(`${file}:8:45 services[0].healthCheck.interval: expected a duration`);
    expect(run.stderr).to.match(new RegExp(`${file}:18:\\d+ routes\\[0\\]\\.destinations\\[1\\]\\.weight: expected number`));
  });

  it('validate: exits 2 on an alias bomb, with the position of its first alias', async () => {
    const levels = ['a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
    for (let i = 1; i < 10; i++) levels.push(`a${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(', ')}]`);
    await writeFile(file, `${levels.join('\n')}\nmesh: *a9\n`);
    const run = await runCli(['validate', file]);
    expect(run.code).to.equal(2);
    expect(run.stderr).to.include(`${file}:2:10 (top level): YAML: aliases expand to too much`);
  });

  it('validate: exits 2 on a missing file', async () => {
    const run = await runCli(['validate', join(tmpdir(), 'does-not-exist.yaml')]);
    expect(run.code).to.equal(2);
    expect(run.stderr).to.include('FL_CONFIG_UNREADABLE');
  });

  it('schema: prints a JSON Schema', async () => {
    const run = await runCli(['schema']);
    expect(run.code).to.equal(0);
    const schema = JSON.parse(run.stdout) as { $schema: string; required: string[] };
    expect(schema.$schema).to.include('2020-12');
    expect(schema.required).to.include('mesh');
  });

  it('sidecar: exits 1 naming the sidecars there are when asked for an unknown one', async () => {
    await writeFile(file, EXAMPLE);
    const run = await runCli(['sidecar', '--config', file, '--service', 'payments']);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.include('FL_SIDECAR_UNKNOWN: no sidecar "payments"').and.include('(sidecars: checkout)');
  });

  it('exits 2 on a bad argument', async () => {
    const run = await runCli(['sidecar']);
    expect(run.code).to.equal(2);
    expect(run.stderr).to.include("required option '-s, --service <name>'");
    const neither = await runCli(['sidecar', '--service', 'x']);
    expect([neither.code, neither.stderr]).to.deep.equal([2, 'give either --config FILE or --control URL\n']);
  });
});

describe('faultline sidecar process', function () {
  this.timeout(30_000);

  it('reloads on SIGHUP, and refuses a bad file while serving on the old config', async () => {
    const { startSidecarProcess, stopProcess } = await import('./helpers/process.ts');
    const { sidecarEntry, writeMesh } = await import('./helpers/mesh.ts');
    const { freeAddress, startUpstream, waitFor } = await import('./helpers/net.ts');
    const { call, send } = await import('./helpers/client.ts');
    const { readFile } = await import('node:fs/promises');
    const upstream = await startUpstream('web');
    const config = {
      mesh: { name: 'hup' },
      services: [{ name: 'client', endpoints: [{ address: await freeAddress() }] }, { name: 'web', endpoints: [{ address: upstream.address }] }],
      sidecars: [await sidecarEntry('client', await freeAddress())],
    };
    const meshFile = await writeMesh(config);
    const sidecar = await startSidecarProcess(meshFile, 'client', ['--no-watch']);
    const version = async () => (await send(sidecar.addresses.admin!, { path: '/config' })).json<{ version: string }>().version;
    try {
      const first = await version();
      await writeFile(meshFile, (await readFile(meshFile, 'utf8')).replace('name: hup', 'name: hup2'));
      sidecar.child.kill('SIGHUP');
      const second = await waitFor(async () => ((await version()) !== first ? await version() : undefined), 5_000, 'the reload');
      await writeFile(meshFile, 'mesh: {name: broken\n');
      sidecar.child.kill('SIGHUP');
      await waitFor(() => sidecar.stderr().includes('config refused'), 5_000, 'the refusal in the log');
      expect(await version()).to.equal(second);
      expect((await call(sidecar.addresses.outbound!, 'web')).status).to.equal(200);
    } finally {
      await stopProcess(sidecar.child);
      await upstream.close();
    }
  });

  it('sizes its own heap: --max-semi-space-size=4 unless NODE_OPTIONS gives one, or FAULTLINE_HEAP=default', async () => {
    const { startSidecarWith, stopProcess } = await import('./helpers/process.ts');
    const { sidecarEntry, writeMesh } = await import('./helpers/mesh.ts');
    const { freeAddress } = await import('./helpers/net.ts');
    const { readFileSync } = await import('node:fs');
    const meshFile = await writeMesh({
      mesh: { name: 'heap' },
      services: [{ name: 'client', endpoints: [{ address: await freeAddress() }] }],
      sidecars: [await sidecarEntry('client', await freeAddress())],
    });
    // The flags the running process (the same pid, replaced by process.execve) was started with.
    const flags = async (env: NodeJS.ProcessEnv) => {
      const sidecar = await startSidecarWith(['--config', meshFile, '--service', 'client', '--no-watch'], env);
      try {
        return readFileSync(`/proc/${sidecar.child.pid}/cmdline`, 'utf8').split('\0').filter((a) => a.startsWith('--max-semi-space-size'));
      } finally {
        await stopProcess(sidecar.child);
      }
    };
    expect(await flags({})).to.deep.equal(['--max-semi-space-size=4']);
    expect(await flags({ NODE_OPTIONS: '--max-semi-space-size=8' })).to.deep.equal([]);
    expect(await flags({ FAULTLINE_HEAP: 'default' })).to.deep.equal([]);
  });
});
