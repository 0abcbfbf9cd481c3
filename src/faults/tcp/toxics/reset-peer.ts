// resetPeer: both sockets reset (RST) a while after the connection opens (Toxiproxy's reset_peer).
import { z } from 'zod';
import { Duration } from '../../../config/primitives.ts';
import { ToxicStage, type ToxicLink } from './stage.ts';
import { defineToxic } from './toxic.ts';

export const resetPeer = defineToxic({
  name: 'resetPeer',
  kind: 'reset_peer',
  schema: z.strictObject({ after: Duration.default(0) }),
  example: { after: '1s' },
  durations: ['after'],
  settings: (config) => ({ afterMs: config.after }),
  stage: (link, settings) => new ResetPeerStage(link, settings),
});

/** After afterMs (from the connection's start), both sockets are reset. Data passes untouched until then. */
class ResetPeerStage extends ToxicStage {
  readonly #afterMs: number;

  constructor(link: ToxicLink, spec: { readonly afterMs: number }) {
    super(link);
    this.#afterMs = spec.afterMs;
  }

  override start(): void {
    this.alarm(this.#afterMs, () => {
      if (!this.link.active()) return;
      this.link.applied();
      this.link.reset();
    });
  }

  protected admit(chunk: Buffer): void {
    this.enqueue(chunk);
  }
}
