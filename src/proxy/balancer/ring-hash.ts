// Consistent hashing on a request header (ketama-style ring with virtual nodes): the same key goes to
// the same endpoint, and when an endpoint leaves only the keys it held move. Without the header the
// pick is random, as Envoy's.
import type { EndpointState } from '../../http/endpoint-state.ts';
import { randomIndex, type Balancer, type PickRequest } from './balancer.ts';

interface Ring {
  readonly points: Uint32Array;
  readonly owners: readonly EndpointState[];
}

const MAX_CACHED_RINGS = 16;

export class RingHashBalancer implements Balancer {
  readonly #header: string | undefined;
  readonly #virtualNodes: number;
  /** Rings by candidate set; the set changes only when health or ejection changes. */
  readonly #rings = new Map<string, Ring>();

  constructor(header: string | undefined, virtualNodes: number) {
    this.#header = header;
    this.#virtualNodes = virtualNodes;
  }

  pick(candidates: readonly EndpointState[], request: PickRequest): EndpointState {
    const value = this.#header ? request.headers[this.#header] : undefined;
    if (value === undefined) return candidates[randomIndex(candidates.length)]!;
    const ring = this.#ring(candidates);
    const index = search(ring.points, hash32(Array.isArray(value) ? value.join(',') : value));
    return ring.owners[index]!;
  }

  #ring(candidates: readonly EndpointState[]): Ring {
    const key = candidates.map((c) => c.address).join('|');
    let ring = this.#rings.get(key);
    if (!ring) {
      ring = buildRing(candidates, this.#virtualNodes);
      if (this.#rings.size >= MAX_CACHED_RINGS) this.#rings.delete(this.#rings.keys().next().value!);
      this.#rings.set(key, ring);
    }
    return ring;
  }
}

/** Each endpoint's points depend only on its address, so the ring of a smaller set is a subset of the larger's. */
export function buildRing(candidates: readonly EndpointState[], virtualNodes: number): Ring {
  const entries: { point: number; owner: EndpointState }[] = [];
  for (const endpoint of candidates) {
    for (let i = 0; i < virtualNodes; i++) entries.push({ point: hash32(`${endpoint.address}#${i}`), owner: endpoint });
  }
  entries.sort((a, b) => a.point - b.point || a.owner.address.localeCompare(b.owner.address));
  return { points: Uint32Array.from(entries, (e) => e.point), owners: entries.map((e) => e.owner) };
}

/** First ring point at or after `hash`, wrapping around. */
function search(points: Uint32Array, hash: number): number {
  let low = 0;
  let high = points.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (points[mid]! < hash) low = mid + 1;
    else high = mid;
  }
  return low === points.length ? 0 : low;
}

/** FNV-1a with murmur3's finaliser, so similar keys spread over the whole ring. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
