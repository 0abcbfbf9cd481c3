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
    expect(run.stderr).to.include("required option '-c, --config <file>'");
  });
});
