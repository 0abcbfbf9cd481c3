// limitData: the connection closed once so many bytes went one way (Toxiproxy's limit_data).
import { z } from 'zod';
import { ToxicStage, type ToxicLink } from './stage.ts';
import { defineToxic } from './toxic.ts';

export const limitData = defineToxic({
  name: 'limitData',
  kind: 'limit_data',
  schema: z.strictObject({ bytes: z.int().min(0) }),
  example: { bytes: 1000 },
  settings: (config) => ({ bytes: config.bytes }),
  stage: (link, settings) => new LimitDataStage(link, settings),
});

/** Lets `bytes` through in its direction (counting all bytes, the fault active or not), then closes the connection. */
class LimitDataStage extends ToxicStage {
  readonly #limit: number;
  #passed = 0;
  #reached = false;

  constructor(link: ToxicLink, spec: { readonly bytes: number }) {
    super(link);
    this.#limit = Math.max(0, Math.floor(spec.bytes));
  }

  override start(): void {
    if (this.#limit === 0 && this.link.active()) this.#reach();
  }

  protected admit(chunk: Buffer): void {
    if (this.#reached) return;
    const left = this.#limit - this.#passed;
    this.#passed += chunk.length;
    if (!this.link.active() || chunk.length < left) return this.enqueue(chunk);
    this.enqueue(chunk.subarray(0, Math.max(0, left)));
    this.#reach();
  }

  #reach(): void {
    this.#reached = true;
    this.link.applied();
    this.link.close();
  }
}
