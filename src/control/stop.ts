// Removing every runtime fault mesh-wide (DELETE /faults, the emergency stop), then checking it: each
// sidecar that ever subscribed is waited for until it acknowledges the new desired state (it reports
// which faults that removed from it) and then asked on its own admin listener what runtime faults it
// still holds. The stop is verified only when every connected sidecar holds none. (A game day's lease
// renewal cannot bring a removed fault back: it is a PUT with If-Match: *, which only renews.)
import { request } from 'undici';
import type { ControlPlane } from './plane.ts';

export interface SidecarStop {
  readonly name: string;
  readonly admin: string | null;
  readonly connected: boolean;
  /** It acknowledged the desired state without the faults. */
  readonly acknowledged: boolean;
  /** The runtime faults that state removed from it, as it reported. */
  readonly removed: readonly string[];
  /** The runtime faults its admin listener still lists; null when it could not be asked. */
  readonly remaining: readonly string[] | null;
  /** Why it is not verified, when it is not. */
  readonly problem: string | null;
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
const ASK_TIMEOUT_MS = 2_000;

/**
 * Removes every runtime fault from the desired state (so from every sidecar; the faults' held requests
 * are released there at once); `removed` runs right after, before any waiting (the halt's event).
 */
export async function stopAllFaults(plane: ControlPlane, removed?: (deleted: string[]) => void, ackWaitMs = ACK_WAIT_MS): Promise<StopReport> {
  const deleted = plane.faults.deleteAll();
  removed?.(deleted);
  const version = plane.state.version;
  await plane.waitForAcks(version, ackWaitMs);
  const sidecars = await Promise.all(plane.sidecars().map(async (status): Promise<SidecarStop> => {
    const admin = plane.snapshot.sidecars.find((s) => s.name === status.name)?.admin ?? null;
    const acknowledged = status.version === version;
    const remaining = admin ? await runtimeFaults(admin) : null;
    return {
      name: status.name,
      admin,
      connected: status.connected,
      acknowledged,
      removed: acknowledged ? status.removed : [],
      remaining,
      problem: problemOf(status.connected, acknowledged, remaining, ackWaitMs),
    };
  }));
  return { deleted, version, verified: sidecars.every((s) => s.problem === null), sidecars };
}

function problemOf(connected: boolean, acknowledged: boolean, remaining: readonly string[] | null, ackWaitMs: number): string | null {
  if (remaining && remaining.length > 0) return `still holds ${remaining.join(', ')}${connected ? '' : ' (disconnected: they end with their leases)'}`;
  if (!connected) return remaining ? null : 'disconnected, and its admin listener does not answer';
  if (!acknowledged) return `did not acknowledge within ${ackWaitMs / 1000} s`;
  if (!remaining) return 'its admin listener does not answer';
  return null;
}

/** The runtime faults a sidecar's admin listener lists; null when it does not answer. */
export async function runtimeFaults(admin: string): Promise<string[] | null> {
  try {
    const response = await request(`http://${admin}/faults`, { signal: AbortSignal.timeout(ASK_TIMEOUT_MS) });
    if (response.statusCode !== 200) {
      await response.body.dump();
      return null;
    }
    const body = (await response.body.json()) as { faults: { id: string; origin: string }[] };
    return body.faults.filter((f) => f.origin === 'runtime').map((f) => f.id);
  } catch {
    return null;
  }
}
