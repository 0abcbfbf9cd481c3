// bandwidth: the bytes of one direction at most bytesPerSecond (Toxiproxy's bandwidth toxic).
import { z } from 'zod';
import { ToxicStage, type ToxicLink } from './stage.ts';
import { defineToxic } from './toxic.ts';

export const bandwidth = defineToxic({
  name: 'bandwidth',
  kind: 'bandwidth',
  schema: z.strictObject({ bytesPerSecond: z.int().min(1) }),
  example: { bytesPerSecond: 1024 },
  settings: (config) => ({ bytesPerSecond: config.bytesPerSecond }),
  stage: (link, settings) => new BandwidthStage(link, settings),
});

/**
 * At most bytesPerSecond on average: each piece (at most 100 ms worth) goes out once the time its bytes
 * cost has passed since the previous one went out, or since it arrived when the line was idle.
 * A rate of 0 or less does not throttle (as Toxiproxy).
 */
class BandwidthStage extends ToxicStage {
  readonly #bytesPerSecond: number;
  readonly #pieceSize: number;
  #clock = 0;

  constructor(link: ToxicLink, spec: { readonly bytesPerSecond: number }) {
    super(link);
    this.#bytesPerSecond = spec.bytesPerSecond;
    this.#pieceSize = Math.max(1, Math.floor(spec.bytesPerSecond / 10));
  }

  protected admit(chunk: Buffer): void {
    if (!this.link.active() || !(this.#bytesPerSecond > 0)) return this.enqueue(chunk);
    this.link.applied();
    for (let offset = 0; offset < chunk.length; offset += this.#pieceSize) {
      const piece = chunk.subarray(offset, offset + this.#pieceSize);
      this.enqueue(piece, (now) => (this.#clock = Math.max(now, this.#clock) + (piece.length * 1000) / this.#bytesPerSecond));
    }
  }
}
