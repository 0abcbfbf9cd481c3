// latency: each chunk held latency ± jitter (Toxiproxy's latency toxic), never overtaking an earlier one.
import { z } from 'zod';
import { Duration } from '../../../config/primitives.ts';
import { ToxicStage, type ToxicLink } from './stage.ts';
import { defineToxic } from './toxic.ts';

export const latency = defineToxic({
  name: 'latency',
  kind: 'latency',
  schema: z.strictObject({ latency: Duration, jitter: Duration.default(0) }),
  example: { latency: '100ms', jitter: '10ms' },
  durations: ['latency', 'jitter'],
  settings: (config) => ({ latencyMs: config.latency, jitterMs: config.jitter }),
  stage: (link, settings) => new LatencyStage(link, settings),
});

/**
 * Each chunk goes out latency ± jitter (uniform) after it came in, never before an earlier one. Up to
 * 1 MiB is in flight, so a delayed line still carries 10 MiB/s at 100 ms.
 */
class LatencyStage extends ToxicStage {
  readonly #latencyMs: number;
  readonly #jitterMs: number;
  #lastRelease = 0;

  constructor(link: ToxicLink, spec: { readonly latencyMs: number; readonly jitterMs: number }) {
    super(link, 1024 * 1024);
    this.#latencyMs = Math.max(0, spec.latencyMs);
    this.#jitterMs = Math.max(0, spec.jitterMs);
  }

  protected admit(chunk: Buffer): void {
    if (!this.link.active() || (this.#latencyMs === 0 && this.#jitterMs === 0)) return this.enqueue(chunk);
    this.link.applied();
    const delay = Math.max(0, this.#latencyMs + this.#jitterMs * (2 * Math.random() - 1));
    this.#lastRelease = Math.max(performance.now() + delay, this.#lastRelease);
    this.enqueue(chunk, this.#lastRelease);
  }
}
