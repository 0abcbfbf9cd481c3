// Builds meshes for tests: a config object → YAML file → snapshot → in-process sidecars on real sockets.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import { compileSnapshot, type Snapshot } from '../../src/config/snapshot.ts';
import { Sidecar } from '../../src/proxy/sidecar.ts';
import { freeAddress } from './net.ts';

export async function writeMesh(config: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'faultline-test-'));
  const file = join(dir, 'mesh.yaml');
  await writeFile(file, stringify(config));
  return file;
}

export function snapshotOf(config: unknown, source = 'test.yaml'): Snapshot {
  return compileSnapshot(parseConfig(stringify(config), source), source);
}

/** A sidecar entry with free loopback ports for its three listeners. */
export async function sidecarEntry(service: string, app: string, name?: string) {
  return {
    ...(name && { name }),
    service,
    outbound: await freeAddress(),
    inbound: await freeAddress(),
    admin: await freeAddress(),
    app,
  };
}

export async function startSidecar(config: unknown, name: string, configFile?: string): Promise<Sidecar> {
  return Sidecar.start({ name, snapshot: snapshotOf(config, configFile ?? 'test.yaml'), ...(configFile && { configFile }) });
}
