// Rollback verification: every fault of the experiment removed through the control plane, then each
// connected sidecar's word (its ack of the new state says which runtime faults it holds, over its own
// connection, wherever its host is) polled until none of them holds one, or a deadline passes (then it
// says which sidecar still holds which fault: the run's result must not claim a clean mesh it did not see).
import type { Journal } from '../journal.ts';
import type { SidecarView } from '../mesh-client.ts';
import { isoAt, type Clock } from '../../clock.ts';

const VERIFY_WITHIN_MS = 5_000;
const POLL_EVERY_MS = 100;

/** The control plane as far as a rollback needs it. */
export interface RollbackApi {
  deleteFault(id: string): Promise<void>;
  sidecars(): Promise<{ sidecars: readonly SidecarView[] }>;
}

/** The fault ids a sidecar holds now; null when it cannot say. */
export type SidecarFaults = (sidecar: SidecarView) => Promise<string[] | null>;

/** What the sidecar said with its last ack. */
const reported: SidecarFaults = async (sidecar) => sidecar.faults ?? null;

export async function rollBack(ids: readonly string[], api: RollbackApi, clock: Clock, faultsOf: SidecarFaults = reported): Promise<NonNullable<Journal['rollback']>> {
  const at = clock.now();
  await Promise.all(ids.map((id) => api.deleteFault(id).catch(() => undefined)));
  const deadline = clock.now() + VERIFY_WITHIN_MS;
  let remaining: Record<string, string[]> = {};
  for (;;) {
    remaining = {};
    const { sidecars } = await api.sidecars();
    for (const s of sidecars.filter((x) => x.connected)) {
      // A sidecar that cannot say what it holds is taken to hold them all.
      const left = ((await faultsOf(s).catch(() => null)) ?? [...ids]).filter((id) => ids.includes(id));
      if (left.length > 0) remaining[s.name] = left;
    }
    if (Object.keys(remaining).length === 0 || clock.now() > deadline) break;
    await clock.sleep(POLL_EVERY_MS);
  }
  return { at: isoAt(at), removed: [...ids], verified: Object.keys(remaining).length === 0, remaining };
}
