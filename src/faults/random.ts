// Reproducible decisions: the n-th request a fault matches draws from a PRNG seeded with (seed, fault
// id, n) alone, so the same seed and the same sequence of requests fault the same requests with the
// same parameters, in any process, whatever else happened in between (other faults, other requests).
import seedrandom from 'seedrandom';

/** The random source of one decision; its first draw decides the percentage, later ones the parameters. */
export function decisionRandom(seed: number, faultId: string, ordinal: number): () => number {
  return seedrandom.alea(`${seed}/${faultId}/${ordinal}`);
}
