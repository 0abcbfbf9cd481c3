// Before anything is injected: every sidecar connected, ready and on the current config, and no other
// experiment holding faults on this one's targets; and where the load enters the mesh.
import type { Snapshot } from '../../config/snapshot.ts';
import { faultTargets } from '../../faults/actions/index.ts';
import type { LoadTarget } from '../load.ts';
import type { MeshClient } from '../mesh-client.ts';
import { targetsOf, type Experiment } from '../spec.ts';

/** How long preflight waits for every sidecar to say it is ready on the current config (a mesh just brought up may not have acknowledged yet). */
export const READY_WAIT_MS = 5_000;
const READY_POLL_MS = 100;

export async function preflight(experiment: Experiment, client: MeshClient, version: string, note: (text: string) => Promise<void>, waitMs = READY_WAIT_MS): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    // Against the state in force now: instances registering meanwhile make new versions of it.
    const { sidecars, version: current } = await client.sidecars();
    version = current || version;
    const unwell = sidecars.filter((s) => !s.connected || s.health !== 'ready' || s.version !== version);
    if (sidecars.length > 0 && unwell.length === 0) {
      await note(`preflight: ${sidecars.length} sidecars ready on version ${version}`);
      break;
    }
    if (Date.now() >= deadline) {
      if (sidecars.length === 0) throw new Error(`no sidecar is connected to the control plane (waited ${waitMs} ms)`);
      throw new Error(`not every sidecar is ready on the current config after ${waitMs} ms: ${unwell.map((s) => `${s.name} (${s.connected ? s.health : 'disconnected'}, version ${s.version})`).join(', ')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }
  const targets = new Set(targetsOf(experiment));
  for (const fault of await client.faults()) {
    const owner = /^experiment:(.+)$/.exec(String(fault.spec.description ?? ''))?.[1];
    if (!owner || owner === experiment.name) continue;
    const touches = faultTargets(fault.spec).some((n) => targets.has(n));
    if (touches) throw new Error(`experiment ${owner} holds faults on these targets (${fault.id}): one game day at a time`);
  }
  await note(`preflight: targets ${[...targets].join(', ') || 'none'} free`);
}

/**
 * Where the load goes: the experiment's url; under strict mTLS, the outbound listener of the mesh's
 * first client-only sidecar (a load generator's), so requests reach the entry service as a workload's
 * do, with its mesh identity over mTLS; else the inbound listener of the entry service's sidecar, as a
 * caller from outside the mesh (which permissive mTLS and plaintext take).
 */
export function loadTarget(experiment: Experiment, snapshot: Snapshot): LoadTarget {
  if (experiment.load.url) return { url: experiment.load.url };
  const entry = experiment.load.entry!;
  const sidecar = snapshot.sidecars.find((s) => s.service === entry && s.inbound !== undefined);
  // Or an instance of it that registered itself (a sidecar joined by flags): its advertised inbound.
  const registered = snapshot.services.get(entry)?.endpoints.find((e) => e.sidecar !== undefined && e.dial === e.address && !snapshot.sidecars.some((s) => s.name === e.sidecar));
  if (!sidecar?.inbound && registered && snapshot.config.mtls.mode !== 'strict') return { url: `http://${registered.address}`, host: entry };
  if (!sidecar?.inbound) throw new Error(`load.entry: no sidecar serves service "${entry}" (none fronts it, or its sidecars are client-only)`);
  if (snapshot.config.mtls.mode !== 'strict') return { url: `http://${sidecar.inbound}`, host: entry };
  const client = snapshot.sidecars.find((s) => s.inbound === undefined && s.outbound !== undefined);
  if (!client) {
    throw new Error(`load.entry: mtls is strict, so ${entry}'s sidecar takes only callers with a mesh identity; declare a client-only sidecar for the load (a service with no endpoints, a sidecar with no inbound and no app), which the load goes through`);
  }
  return { url: `http://${client.outbound!}`, host: entry };
}
