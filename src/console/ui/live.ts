// The Mesh page's stream (GET /ui/live): one frame a second, as the server builds it (src/control/console/live.ts).
export interface Rates {
  rps: number;
  errorPct: number;
  p99: number | null;
}
export interface LiveEdge extends Rates {
  source: string;
  destination: string;
  declared: boolean;
}
export interface FaultView {
  id: string;
  action: string;
  expiresAt: string | null;
  remainingMs: number | null;
  /** Times the sidecars applied it, mesh-wide. */
  applied: number;
  /** Connected sidecars that hold it, of `sidecars`. */
  heldBy: number;
  sidecars: number;
  spec: { percent?: number; at?: string; match?: { source?: string | string[]; destination?: string | string[] } };
}
export interface LiveFrame {
  at: string;
  mesh: string;
  version: string;
  collecting: boolean;
  services: (Rates & { name: string; endpoints: { address: string; labels: Record<string, string> }[] })[];
  edges: LiveEdge[];
  faults: FaultView[];
  breakers: { service: string; subset: string; state: string; sidecar: string; since: string }[];
  ejected: { service: string; endpoint: string; sidecar: string; reason: string; since: string }[];
  sidecars: { name: string; service: string | null; health: string; version: string | null; connected: boolean; faults: string[] | null }[];
  instances: { name: string; service: string; address: string; labels: Record<string, string> }[];
}

function names(value: string | string[] | undefined): string[] | undefined {
  return value === undefined ? undefined : Array.isArray(value) ? value : [value];
}

/** The runtime faults that can hit calls from `source` to `destination` (an unset side matches any). */
export function faultsOn(faults: readonly FaultView[], source: string, destination: string): FaultView[] {
  return faults.filter((f) => {
    const from = names(f.spec.match?.source);
    const to = names(f.spec.match?.destination);
    return (!from || from.includes(source)) && (!to || to.includes(destination));
  });
}

export function formatRate(r: Rates): string {
  return `${r.rps.toFixed(r.rps < 10 ? 1 : 0)} rps · ${r.errorPct.toFixed(1)}% err · p99 ${r.p99 === null ? '–' : `${Math.round(r.p99)} ms`}`;
}
