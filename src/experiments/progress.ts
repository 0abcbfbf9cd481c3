// The runner's progress: on a terminal, one status line redrawn each second (phase, elapsed/total,
// current rps, error rate, p99, active faults); elsewhere (CI, a pipe) plain lines — each phase, and
// the same figures every five seconds.
import { isSample, type LoadRecord } from './load.ts';
import { percentile, succeeded } from '../measures.ts';

export class Progress {
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  #phase = '';
  #timer: NodeJS.Timeout | undefined;
  #startedAt = 0;
  #total = 0;
  #ticks = 0;
  #drawn = false;

  constructor(out: NodeJS.WriteStream) {
    this.#out = out;
    this.#tty = Boolean(out.isTTY);
  }

  phase(name: string): void {
    this.#phase = name;
    this.line(`phase ${name}`);
  }

  line(text: string): void {
    if (this.#drawn) this.#out.write('\r\x1b[2K');
    this.#drawn = false;
    this.#out.write(`${text}\n`);
  }

  start(totalMs: number, read: () => { records: readonly LoadRecord[]; faults: number }): void {
    this.#startedAt = Date.now();
    this.#total = totalMs;
    this.#timer = setInterval(() => {
      this.#ticks++;
      const { records, faults } = read();
      const now = Date.now();
      const recent = records.filter((r) => r.t >= now - 1_000);
      const last = recent.filter(isSample);
      const missed = recent.filter((r) => r.kind === 'missed').length;
      const errors = last.filter((r) => !succeeded(r.status)).length;
      const latencies = last.filter((r) => r.status > 0).map((r) => r.latencyMs).sort((a, b) => a - b);
      const p99 = latencies.length ? percentile(latencies, 99) : 0;
      const text = `${this.#phase.padEnd(9)} ${((now - this.#startedAt) / 1000).toFixed(0).padStart(3)}/${(this.#total / 1000).toFixed(0)} s  ${String(last.length).padStart(5)} rps  errors ${(last.length ? (100 * errors) / last.length : 0).toFixed(1).padStart(5)} %  p99 ${p99.toFixed(0).padStart(5)} ms${missed ? `  missed ${missed}` : ''}  faults ${faults}`;
      if (this.#tty) {
        this.#out.write(`\r\x1b[2K${text}`);
        this.#drawn = true;
      } else if (this.#ticks % 5 === 0) {
        this.#out.write(`${text}\n`);
      }
    }, 1_000);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    if (this.#drawn) this.#out.write('\n');
    this.#drawn = false;
  }
}
