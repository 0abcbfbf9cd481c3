// Builds meshes for tests: a config object → YAML file → snapshot → in-process sidecars on real sockets.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { DEMO_MESH } from '../../src/cli/paths.ts';
import { parseConfig } from '../../src/config/load.ts';
import { compileSnapshot, type Snapshot } from '../../src/config/snapshot.ts';
import { Sidecar } from '../../src/proxy/sidecar.ts';
import { freeAddress, freePort } from './net.ts';

/** The demo shop's service, by absolute path: this checkout's processes, told from any other's. */
export const DEMO_SHOP = join(dirname(DEMO_MESH), 'shop.ts');

/**
 * The demo's mesh file for a test, written to a new directory: on free ports, where as shipped it
 * names fixed ones (170xx–173xx) that another checkout's tests on the same machine may hold at the
 * same time; and with its timeouts (health checks, tries, routes: 300 ms to 1 s) ten times longer.
 * On a starved machine those fired by the dozen (every endpoint unhealthy, tries retried that had
 * not failed); what the tests check of the demo is not its timeouts.
 */
export async function demoMeshOnFreePorts(): Promise<string> {
  const text = await readFile(DEMO_MESH, 'utf8');
  const ports = new Map<string, number>();
  for (const port of new Set(text.match(/\b17[0-3]\d\d\b/g))) ports.set(port, await freePort());
  const file = join(await mkdtemp(join(tmpdir(), 'faultline-demo-mesh-')), 'mesh.yaml');
  const patched = text
    .replace(/\b17[0-3]\d\d\b/g, (port) => String(ports.get(port)))
    .replaceAll('shop.ts', DEMO_SHOP)
    .replace(/\b(timeout|perTryTimeout): (\d+)(ms|s)\b/g, (_, key: string, n: string, unit: string) => `${key}: ${Number(n) * 10}${unit}`);
  await writeFile(file, patched);
  return file;
}

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
