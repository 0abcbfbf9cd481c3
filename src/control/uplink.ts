// A sidecar's uplink: its events pushed to the control plane over one long-lived request (NDJSON in
// the request body, batched as /events batches them), so that the control plane and a game day's
// recorder never need to reach the sidecar's admin listener — on its own host's loopback. It resumes
// after the last event the control plane has, fails over with the watch stream to another replica,
// and takes request.done only while the control plane says someone reads them (they cost the data path).
// The sidecar's acks ride it too, one line each (type "ack"), instead of a request each: the latest is
// sent again at the start of every push, so a push that broke loses none.
import { PassThrough } from 'node:stream';
import { pipeEvents } from '../telemetry/event-stream.ts';
import { parseSamples } from '../telemetry/metrics.ts';
import type { EventBus } from '../telemetry/events.ts';
import { silentLogger, type Logger } from '../telemetry/log.ts';
import { controlRequest } from '../http/control-transport.ts';
import type { Ack } from './sidecar-roster.ts';

export interface UplinkOptions {
  readonly sidecar: string;
  readonly token: string;
  /** The CA bundle its https:// URLs are trusted through (--control-ca). */
  readonly ca?: string;
  /** The control plane replica in use (the watch stream's: they fail over together). */
  readonly url: () => string;
  readonly events: EventBus;
  /** The sidecar's metrics (Prometheus text): while someone records, what changed goes up each second. */
  readonly metrics?: () => Promise<string>;
  readonly log?: Logger;
}

/** How often a recorded sidecar's metric samples go up. */
const METRICS_EVERY_MS = 1_000;

export class Uplink {
  readonly #options: UplinkOptions;
  readonly #log: Logger;
  #requests = false;
  #closed = false;
  #body: PassThrough | undefined;
  /** The replica the open push goes to. */
  #pushUrl: string | undefined;
  /** The latest ack, as its line. */
  #ack: string | undefined;
  #loop: Promise<void>;
  #wake: (() => void) | undefined;

  constructor(options: UplinkOptions) {
    this.#options = options;
    this.#log = (options.log ?? silentLogger).child({ uplink: options.sidecar });
    this.#loop = this.#run();
  }

  /** Take request.done too, or decisions only: the open push ends and a new one starts from where it was. */
  setRequests(requests: boolean): void {
    if (requests === this.#requests) return;
    this.#requests = requests;
    this.#body?.end();
    this.#wake?.();
  }

  /** The sidecar applied a state (or refused it): said on the open push, or on the next one. */
  acknowledge(ack: Ack): void {
    this.#ack = `${JSON.stringify({ type: 'ack', ...ack })}\n`;
    const body = this.#body;
    if (!body || body.writableEnded || body.destroyed) {
      // None open: a push waiting to retry starts now, as there is something to say.
      this.#wake?.();
      return;
    }
    // The watch stream moved to another replica: the ack is for that one, on a push that starts there.
    if (this.#pushUrl !== this.#options.url()) return void body.end();
    body.write(this.#ack);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#body?.end();
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#closed) {
      try {
        await this.#push();
        failures = 0;
      } catch (error) {
        if (this.#closed) break;
        if (failures === 0) this.#log.warn({ error: (error as Error).message }, 'event uplink broke; resuming');
        failures++;
        // Retry soon, with backoff: the watch stream fails over meanwhile, and url() follows it.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(5_000, 100 * 2 ** Math.min(failures, 6))).unref();
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = undefined;
      }
    }
  }

  /** One push: ask where to resume, then stream from there until it ends (a switch, a close) or breaks. */
  async #push(): Promise<void> {
    const { sidecar, token, events, ca } = this.#options;
    const url = this.#options.url();
    const headers = { authorization: `Bearer ${token}` };
    const cursor = await controlRequest(`${url}/v1/uplink?sidecar=${encodeURIComponent(sidecar)}`, { headers, headersTimeout: 5_000, bodyTimeout: 5_000 }, ca);
    if (cursor.statusCode !== 200) throw new Error(`uplink cursor answered ${cursor.statusCode}: ${(await cursor.body.text()).slice(0, 200)}`);
    const { since } = (await cursor.body.json()) as { since: number };
    // Closed while asking: no push to start (close() found none to end).
    if (this.#closed) return;
    // The control plane has more of this sidecar than it ever sent: it restarted, and numbers from 1 again.
    const from = since > events.lastSeq ? 0 : since;
    const requests = this.#requests;
    const body = new PassThrough();
    this.#body = body;
    // A blank line at once: the request (and its head) goes out now, not with the first event, so the
    // control plane knows the uplink is open even while this sidecar has nothing to say.
    body.write('\n');
    this.#pushUrl = url;
    if (this.#ack) body.write(this.#ack);
    const stop = pipeEvents(events, from, body, { requests });
    // While someone records (request.done wanted), the metric samples that changed, each second, in the
    // same stream — so that a recorder never needs this sidecar's admin listener either.
    const sampling = requests && this.#options.metrics ? this.#sampleMetrics(body) : undefined;
    try {
      const response = await controlRequest(`${url}/v1/uplink?sidecar=${encodeURIComponent(sidecar)}&requests=${requests}`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/x-ndjson' },
        body,
        // The answer comes when the push ends: no deadline on it, nor on the body it streams.
        headersTimeout: 0,
        bodyTimeout: 0,
      }, ca);
      await response.body.dump();
      if (response.statusCode !== 204) throw new Error(`uplink answered ${response.statusCode}`);
    } finally {
      if (sampling) clearInterval(sampling);
      stop();
      body.destroy();
      if (this.#body === body) this.#body = undefined;
    }
  }

  #lastSamples: Record<string, number> = {};
  #metricsSeq = 0;

  #sampleMetrics(body: PassThrough): NodeJS.Timeout {
    const { sidecar, metrics } = this.#options;
    const timer = setInterval(() => void metrics!().then((text) => {
      if (body.destroyed || body.writableEnded) return;
      const samples = parseSamples(text);
      const changed: Record<string, number> = {};
      for (const [key, value] of Object.entries(samples)) if (!key.includes('_bucket{') && this.#lastSamples[key] !== value) changed[key] = value;
      this.#lastSamples = samples;
      // Numbered apart from the bus's events (seq 0): where to resume is the events' business, not theirs.
      const sample = { type: 'metrics.sample', seq: 0, time: Date.now(), monotonic: performance.now(), sidecar, samples: changed, sampleNo: ++this.#metricsSeq };
      body.write(`${JSON.stringify(sample)}\n`);
    }, () => undefined), METRICS_EVERY_MS);
    timer.unref();
    return timer;
  }
}
