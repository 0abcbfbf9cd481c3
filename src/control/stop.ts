// Removing every runtime fault mesh-wide (DELETE /faults, the emergency stop), then checking it: each
// sidecar that ever subscribed is waited for until it acknowledges the new desired state, and its ack
// says which faults that removed from it and which runtime faults it holds after applying it — over
// its own connection, wherever its host is (nothing asks its admin listener, on that host's loopback).
// The stop is verified only when every connected sidecar holds none. (A game day's lease renewal
// cannot bring a removed fault back: it is a PUT with If-Match: *, which only renews.)
import type { PeerSidecars } from './peers.ts';
import type { ControlPlane } from './plane.ts';

export interface SidecarStop {
  readonly name: string;
  readonly admin: string | null;
  readonly connected: boolean;
  /** It acknowledged the desired state without the faults (or a later one). */
  readonly acknowledged: boolean;
  /** The runtime faults that state removed from it, as it reported. */
  readonly removed: readonly string[];
  /** The runtime faults it holds, as its ack of the stop's version said; null when it has not said. */
  readonly remaining: readonly string[] | null;
  /** Why it is not verified, when it is not. */
  readonly problem: string | null;
  /** The replica it is attached to, when another than the one that stopped. */
  readonly replica?: string;
}

export interface StopReport {
  /** The runtime faults the control plane held and removed. */
  readonly deleted: readonly string[];
  readonly version: string;
  /** Every connected sidecar acknowledged and holds no runtime fault, and none was disconnected. */
  readonly verified: boolean;
  readonly sidecars: readonly SidecarStop[];
}

/** How long the stop waits for every sidecar's acknowledgement before it asks them anyway. */
const ACK_WAIT_MS = 5_000;

/**
 * Removes every runtime fault from the desired state (so from every sidecar; the faults' held requests
 * are released there at once); `removed` runs right after, before any waiting (the halt's event).
 */
export async function stopAllFaults(plane: ControlPlane, removed?: (deleted: string[]) => void, ackWaitMs = ACK_WAIT_MS, peers?: { sidecars(): Promise<PeerSidecars[]> }): Promise<StopReport> {
  const started = Date.now();
  const deleted = await plane.deleteAllFaults();
  removed?.(deleted);
  const version = plane.state.version;
  await plane.waitForAcks(version, ackWaitMs);
  const sidecars = plane.sidecars().map((status): SidecarStop => {
    const admin = plane.snapshot.sidecars.find((s) => s.name === status.name)?.admin ?? null;
    // It acknowledged the stop's version, or a later one (a sidecar sent several at once applies the latest).
    const acknowledged = plane.hasApplied(status.name, version);
    // What it said with that ack; a disconnected one, what it said last.
    const remaining = acknowledged || !status.connected ? status.faults : null;
    return {
      name: status.name,
      admin,
      connected: status.connected,
      acknowledged,
      removed: acknowledged ? status.removed : [],
      remaining,
      problem: problemOf(status.connected, acknowledged, remaining, ackWaitMs),
    };
  });
  const all = peers ? await withPeers(sidecars, peers, started + ackWaitMs) : sidecars;
  return { deleted, version, verified: all.every((s) => s.problem === null), sidecars: all };
}

/**
 * The sidecars attached to the other replicas sharing the store, from what each of those says (GET
 * /sidecars), asked until every one of them is ready on its replica's state holding no runtime fault,
 * or the deadline: the faults' removal reaches them through the store, a moment later. A sidecar listed
 * by two replicas (it failed over) counts where it is connected; a replica that does not answer is a
 * problem of its own, its sidecars unknown.
 */
async function withPeers(own: SidecarStop[], peers: { sidecars(): Promise<PeerSidecars[]> }, deadline: number): Promise<SidecarStop[]> {
  for (;;) {
    const answers = await peers.sidecars();
    const merged = new Map(own.map((s) => [s.name, s]));
    for (const answer of answers) {
      if (!answer.sidecars) {
        merged.set(`replica ${answer.url}`, { name: `replica ${answer.url}`, admin: null, connected: false, acknowledged: false, removed: [], remaining: null, replica: answer.url, problem: `the replica did not answer (${answer.error ?? 'no answer'}): its sidecars are not checked` });
        continue;
      }
      for (const view of answer.sidecars) {
        const here = merged.get(view.name);
        // Where it is connected counts: this replica's word when it is attached here.
        if (here && (here.connected || !view.connected)) continue;
        const acknowledged = view.health === 'ready';
        const remaining = acknowledged || !view.connected ? view.faults : null;
        merged.set(view.name, {
          name: view.name,
          admin: view.admin,
          connected: view.connected,
          acknowledged,
          removed: acknowledged ? view.removed : [],
          remaining,
          replica: answer.url,
          problem: !view.connected
            ? problemOf(false, false, remaining, 0)
            : !acknowledged ? `not yet on the state of its replica ${answer.url}`
            : remaining && remaining.length > 0 ? `still holds ${remaining.join(', ')}`
            : !remaining ? 'acknowledged without saying which runtime faults it holds'
            : null,
        });
      }
    }
    const all = [...merged.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    if (all.every((s) => s.problem === null) || Date.now() >= deadline) return all;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function problemOf(connected: boolean, acknowledged: boolean, remaining: readonly string[] | null, ackWaitMs: number): string | null {
  if (!connected) return `disconnected${remaining && remaining.length > 0 ? `, and last said it holds ${remaining.join(', ')}` : ''}: its runtime faults end with their leases, on its own clock`;
  if (!acknowledged) return `did not acknowledge within ${ackWaitMs / 1000} s`;
  if (remaining && remaining.length > 0) return `still holds ${remaining.join(', ')}`;
  if (!remaining) return 'acknowledged without saying which runtime faults it holds';
  return null;
}
