// A run's recording, written as it happens: every event of every sidecar (the control plane's merged
// stream, each sidecar's metric samples among them), every response of the load — and the same in memory
// for the live halt checks and the verdicts.
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { faultTargets } from '../faults/actions/index.ts';
import type { LoadRecord } from './load.ts';
import type { MeshClient } from './mesh-client.ts';
import type { Journal } from './journal.ts';
import type { Experiment } from './spec.ts';
import type { Recording } from './verdicts.ts';

/** The run's recording: files as it goes, and the same in memory for live halts and the verdicts. */
export class Recorder {
  readonly #dir: string;
  readonly load: LoadRecord[] = [];
  readonly events: Record<string, unknown>[] = [];
  #files: { load: WriteStream; events: WriteStream; metrics: WriteStream } | undefined;
  #stopFollow: (() => void) | undefined;

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Starts recording; resolves once the mesh's events, request.done included, flow in (start the load then). */
  start(client: MeshClient, onHalt: (reason: string) => void): Promise<void> {
    const open = (name: string) => createWriteStream(join(this.#dir, name));
    this.#files = { load: open('load.ndjson'), events: open('events.ndjson'), metrics: open('metrics.ndjson') };
    const following = client.follow(
      (event) => {
        // Each sidecar's metric samples that changed each second (sent up with its events while this
        // records; buckets left out: request durations are in the events, request by request).
        if (event.type === 'metrics.sample') {
          this.#files?.metrics.write(`${JSON.stringify({ t: event.time, sidecar: event.sidecar, samples: event.samples })}\n`);
          return;
        }
        this.events.push(event);
        this.#files?.events.write(`${JSON.stringify(event)}\n`);
        if (event.type === 'mesh.halted') onHalt(`emergency stop by ${String(event.by)}: ${String(event.reason)}`);
      },
      (error) => this.#files?.events.write(`${JSON.stringify({ type: 'recorder.error', time: Date.now(), error: error.message })}\n`),
    );
    this.#stopFollow = following.stop;
    return following.ready;
  }

  record(r: LoadRecord): void {
    this.load.push(r);
    this.#files?.load.write(`${JSON.stringify(r)}\n`);
  }

  recording(experiment: Experiment, journal: Journal): Recording {
    const targets = (i: number) => faultTargets(experiment.method[i]!.fault);
    return {
      entry: experiment.load.entry,
      load: this.load,
      events: this.events,
      cohort: experiment.load.cohort !== undefined,
      rollbackAt: journal.rollback ? Date.parse(journal.rollback.at) : null,
      faults: journal.faults.filter((f) => f.injectedAt).map((f) => ({ id: f.id, injectedAt: Date.parse(f.injectedAt!), removedAt: f.removedAt ? Date.parse(f.removedAt) : null, targets: targets(f.step) })),
    };
  }

  async stop(): Promise<void> {
    // Let the last events of the run reach the stream before it closes.
    await sleep(300);
    this.#stopFollow?.();
    await Promise.all(Object.values(this.#files ?? {}).map((f) => new Promise<void>((resolve) => f.end(resolve))));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
