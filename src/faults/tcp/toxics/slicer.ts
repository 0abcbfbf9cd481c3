// slicer: the bytes of one direction in small pieces with pauses between them (Toxiproxy's slicer).
import { z } from 'zod';
import { Duration } from '../../../config/primitives.ts';
import { ToxicStage, type ToxicLink } from './stage.ts';
import { defineToxic } from './toxic.ts';

export const slicer = defineToxic({
  name: 'slicer',
  kind: 'slicer',
  schema: z.strictObject({ averageSize: z.int().min(1), sizeVariation: z.int().min(0).default(0), delay: Duration.default(0) }),
  example: { averageSize: 100, sizeVariation: 10, delay: '1ms' },
  durations: ['delay'],
  settings: (config) => ({ averageSize: config.averageSize, sizeVariation: config.sizeVariation, delayMs: config.delay }),
  stage: (link, settings) => new SlicerStage(link, settings),
});

/** Each chunk goes out in pieces of averageSize ± sizeVariation bytes (uniform, at least 1), each delayMs after the one before. */
class SlicerStage extends ToxicStage {
  readonly #averageSize: number;
  readonly #sizeVariation: number;
  readonly #delayMs: number;

  constructor(link: ToxicLink, spec: { readonly averageSize: number; readonly sizeVariation: number; readonly delayMs: number }) {
    super(link);
    this.#averageSize = Math.max(1, Math.floor(spec.averageSize));
    this.#sizeVariation = Math.max(0, Math.min(Math.floor(spec.sizeVariation), this.#averageSize - 1));
    this.#delayMs = Math.max(0, spec.delayMs);
  }

  protected admit(chunk: Buffer): void {
    if (!this.link.active()) return this.enqueue(chunk);
    this.link.applied();
    const spaced = (_now: number, lastPushAt: number): number => lastPushAt + this.#delayMs;
    let offset = 0;
    while (offset < chunk.length) {
      const variation = Math.floor(Math.random() * (2 * this.#sizeVariation + 1)) - this.#sizeVariation;
      const size = Math.max(1, this.#averageSize + variation);
      this.enqueue(chunk.subarray(offset, offset + size), spaced);
      offset += size;
    }
  }
}
