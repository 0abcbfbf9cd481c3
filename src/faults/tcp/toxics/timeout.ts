// timeout: no data passes, and the connection is closed after a while, or never (Toxiproxy's timeout).
import { z } from 'zod';
import { Duration } from '../../../config/primitives.ts';
import { ToxicStage, type ToxicLink } from './stage.ts';
import { defineToxic } from './toxic.ts';

export const timeout = defineToxic({
  name: 'timeout',
  kind: 'timeout',
  schema: z.strictObject({ after: Duration.default(0).meta({ description: '0: hold the connection open forever' }) }),
  example: { after: '2s' },
  durations: ['after'],
  settings: (config) => ({ afterMs: config.after }),
  stage: (link, settings) => new TimeoutStage(link, settings),
});

/**
 * No data passes (it is held, and let go if the fault is removed); after afterMs (from the
 * connection's start) the held data is dropped and the connection closed. afterMs 0 holds forever.
 */
class TimeoutStage extends ToxicStage {
  readonly #afterMs: number;

  constructor(link: ToxicLink, spec: { readonly afterMs: number }) {
    super(link);
    this.#afterMs = spec.afterMs;
  }

  override start(): void {
    if (this.#afterMs <= 0) return;
    this.alarm(this.#afterMs, () => {
      if (!this.link.active()) return;
      this.link.applied();
      this.discard();
      this.link.close();
    });
  }

  override closing(): void {
    if (this.link.active()) this.discard();
  }

  protected admit(chunk: Buffer): void {
    if (!this.link.active()) return this.enqueue(chunk);
    this.link.applied();
    this.enqueue(chunk, Number.POSITIVE_INFINITY);
  }
}
