// The sidecars as an operator sees them (GET /sidecars, the console): each one's status with its admin
// address and a health word, from what it says over its own connection — connected, and the desired
// version applied. Nothing asks its admin listener.
import type { ControlPlane } from './plane.ts';
import type { SidecarStatus } from './sidecar-roster.ts';

export interface SidecarView extends SidecarStatus {
  readonly admin: string | null;
  readonly health: 'ready' | 'not ready' | 'disconnected';
}

export function sidecarViews(plane: ControlPlane): SidecarView[] {
  const version = plane.state.version;
  return plane.sidecars().map((status) => {
    const admin = plane.snapshot.sidecars.find((s) => s.name === status.name)?.admin ?? null;
    const health = !status.connected ? 'disconnected' : status.version === version ? 'ready' : 'not ready';
    return { ...status, admin, health };
  });
}
