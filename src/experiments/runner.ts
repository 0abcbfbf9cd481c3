// `faultline run`: one game day. Phases, each journaled (atomically, so a killed runner leaves a
// readable journal marked incomplete): validate → preflight → warm-up → baseline (steady state must
// hold before any fault, else `inconclusive`) → method (faults put through the control plane with
// short leases, renewed every second while the runner lives) → rollback (always: every fault removed,
// then verified gone on every sidecar) → recovery → done. Everything is recorded in the run's
// directory — journal, every event of every sidecar, every response of the load, each sidecar's
// metrics every second — so the analysis can recompute everything without the mesh.
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { up, type Mesh } from '../cli/up.ts';
import type { Snapshot } from '../config/snapshot.ts';
import { writeFileAtomic } from '../control/store.ts';
import { faultTargets } from '../faults/actions/index.ts';
import { dryRun } from './dry-run.ts';
import { LoadGenerator } from './load.ts';
import { MeshClient, sidecarFaults, targetClient } from './mesh-client.ts';
import { Recorder } from './recorder.ts';
import { faultBody, rampPercent } from './steps.ts';
import { summarise } from './summary.ts';
import { writeReports } from '../reports/write.ts';
import { Progress } from './progress.ts';
import { methodLength, parseExperiment, targetsOf, type Experiment, type HaltConfig, type StepConfig } from './spec.ts';
import { availability, expectVerdict, percentile, samplesFor, steadyStateVerdict, type Recording, type Verdict, type Window } from './verdicts.ts';

export type RunOutcome = 'passed' | 'failed' | 'halted' | 'inconclusive' | 'error';
export const EXIT_CODES: Record<RunOutcome, number> = { passed: 0, failed: 1, halted: 3, inconclusive: 1, error: 4 };

/** How long a fault's lease outlives the moment it was last renewed: a dead runner's faults end this soon. */
export const LEASE_MS = 5_000;
const RENEW_EVERY_MS = 1_000;

export interface RunOptions {
  readonly file: string;
  readonly seed?: number;
  /** Reports go to <out>/<experiment>/<timestamp>/. */
  readonly out: string;
  readonly dryRun?: boolean;
  /** Where progress and phase lines go (a TTY gets a live status line). */
  readonly stream?: NodeJS.WriteStream;
}

export interface Journal {
  experiment: string;
  file: string;
  seed: number;
  status: 'running' | 'complete';
  outcome: RunOutcome | null;
  reason: string | null;
  startedAt: string;
  finishedAt: string | null;
  target: string;
  phases: { name: string; startedAt: string; endedAt: string | null; outcome: string | null; notes: string[] }[];
  faults: { id: string; step: number; injectedAt: string | null; removedAt: string | null; renewals: number; spec: Record<string, unknown> }[];
  halts: { at: string; reason: string }[];
  rollback: { at: string; removed: string[]; verified: boolean; remaining: Record<string, string[]> } | null;
  verdicts: Verdict[];
}

export interface RunResult {
  readonly outcome: RunOutcome;
  readonly exitCode: number;
  readonly dir: string;
  readonly journal: Journal;
}

class Halted extends Error {}

export async function runExperiment(options: RunOptions): Promise<RunResult> {
  const file = resolve(options.file);
  const experiment = parseExperiment(await readFile(file, 'utf8'), options.file);
  const seed = options.seed ?? experiment.seed ?? Math.floor(Math.random() * 2 ** 31);
  const stream = options.stream ?? process.stdout;
  const progress = new Progress(stream);
  if (options.dryRun) return dryRun(experiment, file, seed, progress);

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dir = join(resolve(options.out), experiment.name, stamp);
  await mkdir(dir, { recursive: true });
  await copyFile(file, join(dir, 'experiment.yaml'));
  const journal: Journal = {
    experiment: experiment.name,
    file,
    seed,
    status: 'running',
    outcome: null,
    reason: null,
    startedAt: new Date().toISOString(),
    finishedAt: null,
    target: 'mesh' in experiment.target ? `mesh ${experiment.target.mesh}` : `control ${experiment.target.control}`,
    phases: [],
    faults: experiment.method.map((step, i) => ({ id: step.fault.id, step: i, injectedAt: null, removedAt: null, renewals: 0, spec: faultBody(experiment, step, seed) })),
    halts: [],
    rollback: null,
    verdicts: [],
  };
  const save = () => writeFileAtomic(join(dir, 'journal.json'), `${JSON.stringify(journal, null, 2)}\n`, 0o644);
  await save();
  let current: Journal['phases'][number] | undefined;
  const phase = async (name: string) => {
    if (current) current.endedAt = new Date().toISOString();
    current = { name, startedAt: new Date().toISOString(), endedAt: null, outcome: null, notes: [] };
    journal.phases.push(current);
    progress.phase(name);
    await save();
  };
  const note = async (text: string) => {
    current?.notes.push(text);
    progress.line(text);
    await save();
  };

  let mesh: Mesh | undefined;
  let stateDir: string | undefined;
  let client: MeshClient | undefined;
  const recorder = new Recorder(dir);
  const loadGen = new LoadGenerator();
  let loadDone: Promise<void> | undefined;
  const injected = new Set<string>();
  const stepTimers: NodeJS.Timeout[] = [];
  let renewTimer: NodeJS.Timeout | undefined;
  let haltTimer: NodeJS.Timeout | undefined;
  let halted: string | undefined;
  let haltWake: (() => void) | undefined;
  const windows: Window[] = [];
  let snapshot: Snapshot | undefined;
  let outcome: RunOutcome = 'error';

  try {
    await phase('preflight');
    if ('mesh' in experiment.target) {
      stateDir = await mkdtemp(join(tmpdir(), 'faultline-run-'));
      mesh = await up({ file: resolve(dirname(file), experiment.target.mesh), listen: '127.0.0.1:0', stateDir });
      client = new MeshClient(mesh.control.url, mesh.token);
      await note(`brought up ${experiment.target.mesh}: control plane ${mesh.control.url}`);
    } else {
      client = await targetClient(experiment.target, file);
    }
    const meshClient = client;
    const state = await meshClient.snapshot();
    snapshot = state.snapshot;
    await preflight(experiment, meshClient, state.version, note);
    const target = loadTarget(experiment, snapshot);

    // Recording starts before the load: every event from here on, every response, metrics each second.
    // The load waits until the sidecars' request.done flow into the recording (they keep none unread).
    await recorder.start(meshClient, (reason) => {
      halted ??= reason;
      haltWake?.();
    });
    const total = experiment.phases.warmup + experiment.phases.baseline + methodLength(experiment) + experiment.phases.recovery;
    const loadStart = Date.now();
    progress.start(total, () => ({ records: recorder.load, faults: injected.size }));
    loadDone = loadGen.run(experiment, target, total + 1_000, (r) => recorder.record(r));

    await phase('warm-up');
    await sleep(experiment.phases.warmup);
    await phase('baseline');
    const baseline: Window = { name: 'baseline', from: Date.now(), to: Date.now() + experiment.phases.baseline };
    await sleep(experiment.phases.baseline);
    windows.push(baseline);
    const baselineVerdicts = experiment.steadyState.map((h) => steadyStateVerdict(h, recorder.recording(experiment, journal), baseline));
    journal.verdicts.push(...baselineVerdicts);
    current!.outcome = baselineVerdicts.every((v) => v.outcome === 'pass') ? 'steady' : 'not steady';
    if (current!.outcome !== 'steady') {
      await note(`steady state did not hold before any fault: ${baselineVerdicts.filter((v) => v.outcome !== 'pass').map((v) => `${v.hypothesis} (${v.measured})`).join('; ')}`);
      outcome = 'inconclusive';
      journal.reason = 'steady state did not hold in the baseline';
      return await finish();
    }

    await phase('method');
    const methodStart = Date.now();
    const method: Window = { name: 'method', from: methodStart, to: methodStart + methodLength(experiment) };
    const active = new Map<string, { step: StepConfig; index: number; endsAt: number }>();
    const putStep = async (index: number) => {
      const entry = active.get(experiment.method[index]!.fault.id);
      if (!entry) return;
      const body = faultBody(experiment, entry.step, seed, rampPercent(entry.step, Date.now() - (methodStart + entry.step.at)));
      await meshClient.putFault(body, Math.min(LEASE_MS, entry.endsAt - Date.now() + LEASE_MS));
    };
    experiment.method.forEach((step, index) => {
      stepTimers.push(setTimeout(() => void (async () => {
        if (halted) return;
        const record = journal.faults[index]!;
        active.set(step.fault.id, { step, index, endsAt: methodStart + step.at + step.duration });
        await putStep(index);
        injected.add(step.fault.id);
        record.injectedAt = new Date().toISOString();
        await note(`injected ${step.fault.id} for ${step.duration} ms`);
      })().catch((error: Error) => { halted ??= `could not inject ${step.fault.id}: ${error.message}`; haltWake?.(); }), step.at));
      stepTimers.push(setTimeout(() => void (async () => {
        active.delete(step.fault.id);
        await meshClient.deleteFault(step.fault.id);
        injected.delete(step.fault.id);
        journal.faults[index]!.removedAt = new Date().toISOString();
        await note(`removed ${step.fault.id}`);
      })().catch(() => undefined), step.at + step.duration));
    });
    // Leases renewed every second while this process lives; ramps move up on the same tick.
    renewTimer = setInterval(() => {
      for (const entry of active.values()) {
        void putStep(entry.index).then(() => journal.faults[entry.index]!.renewals++, () => undefined);
      }
    }, RENEW_EVERY_MS);
    haltTimer = setInterval(() => {
      const reason = haltReason(experiment, recorder.recording(experiment, journal));
      if (reason && !halted) {
        halted = reason;
        haltWake?.();
      }
    }, 1_000);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, methodLength(experiment));
      haltWake = () => {
        clearTimeout(timer);
        resolve();
      };
      if (halted) haltWake();
    });
    windows.push({ ...method, to: Math.min(method.to, Date.now()) });
    if (halted) throw new Halted(halted);
    current!.outcome = 'done';
    await rollback();
    await phase('recovery');
    const recoveryStart = Date.now();
    await sleep(experiment.phases.recovery);
    windows.push({ name: 'recovery', from: recoveryStart, to: Date.now() });
    outcome = 'passed'; // unless a hypothesis fails: judged in finish()
    return await finish();
  } catch (error) {
    if (error instanceof Halted) {
      journal.halts.push({ at: new Date().toISOString(), reason: error.message });
      await note(`HALT: ${error.message}`);
      outcome = 'halted';
      journal.reason = error.message;
    } else {
      outcome = 'error';
      journal.reason = (error as Error).message;
      await note(`error: ${(error as Error).message}`).catch(() => undefined);
    }
    return await finish();
  }

  /** Every fault of this experiment removed through the control plane, then checked gone on each sidecar. */
  async function rollback(): Promise<void> {
    if (journal.rollback) return;
    for (const t of stepTimers) clearTimeout(t);
    clearInterval(renewTimer);
    clearInterval(haltTimer);
    if (!client) return;
    await phase('rollback');
    const ids = experiment.method.map((s) => s.fault.id);
    const at = Date.now();
    await Promise.all(ids.map((id) => client!.deleteFault(id).catch(() => undefined)));
    for (const [i, record] of journal.faults.entries()) if (record.injectedAt && !record.removedAt) journal.faults[i]!.removedAt = new Date(at).toISOString();
    injected.clear();
    const deadline = Date.now() + 5_000;
    let remaining: Record<string, string[]> = {};
    for (;;) {
      remaining = {};
      const { sidecars } = await client.sidecars();
      for (const s of sidecars.filter((x) => x.connected && x.admin)) {
        const left = (await sidecarFaults(s.admin!).catch(() => ids)).filter((id) => ids.includes(id));
        if (left.length > 0) remaining[s.name] = left;
      }
      if (Object.keys(remaining).length === 0 || Date.now() > deadline) break;
      await sleep(100);
    }
    journal.rollback = { at: new Date(at).toISOString(), removed: ids, verified: Object.keys(remaining).length === 0, remaining };
    current!.outcome = journal.rollback.verified ? 'verified' : 'NOT verified';
    await note(journal.rollback.verified ? 'rollback verified: no fault of this experiment is left on any sidecar' : `rollback NOT verified: ${JSON.stringify(remaining)}`);
  }

  async function finish(): Promise<RunResult> {
    try {
      await rollback();
    } catch (error) {
      journal.rollback ??= { at: new Date().toISOString(), removed: [], verified: false, remaining: { error: [(error as Error).message] } };
    }
    loadGen.stop();
    await loadDone?.catch(() => undefined);
    await recorder.stop();
    progress.stop();
    const recording = recorder.recording(experiment, journal);
    if (outcome !== 'inconclusive' && outcome !== 'error') {
      const method = windows.find((w) => w.name === 'method');
      for (const w of windows.filter((x) => x.name !== 'baseline')) journal.verdicts.push(...experiment.steadyState.map((h) => steadyStateVerdict(h, recording, w)));
      if (method) journal.verdicts.push(...experiment.expect.map((e) => expectVerdict(e, experiment, recording, method)));
      if (outcome !== 'halted') outcome = journal.verdicts.some((v) => v.outcome === 'fail') ? 'failed' : 'passed';
    }
    journal.outcome = outcome;
    journal.status = 'complete';
    journal.finishedAt = new Date().toISOString();
    if (current) current.endedAt = journal.finishedAt;
    await save();
    let reports = '';
    try {
      const written = await writeReports(dir);
      reports = `  report: ${written.files.html} (and report.md, report.json, junit.xml); resilience score ${written.analysis.score.value}\n`;
    } catch (error) {
      reports = `  report: not written (${(error as Error).message}); the recording is complete: faultline report ${dir}\n`;
    }
    const summary = summarise(journal, dir, recording, experiment) + reports;
    await writeFile(join(dir, 'summary.txt'), summary);
    stream.write(summary);
    await mesh?.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
    return { outcome, exitCode: EXIT_CODES[outcome], dir, journal };
  }
}

async function preflight(experiment: Experiment, client: MeshClient, version: string, note: (text: string) => Promise<void>): Promise<void> {
  const { sidecars } = await client.sidecars();
  const unwell = sidecars.filter((s) => !s.connected || s.health !== 'ready' || s.version !== version);
  if (sidecars.length === 0) throw new Error('no sidecar is connected to the control plane');
  if (unwell.length > 0) throw new Error(`not every sidecar is ready on the current config: ${unwell.map((s) => `${s.name} (${s.connected ? s.health : 'disconnected'}, version ${s.version})`).join(', ')}`);
  const targets = new Set(targetsOf(experiment));
  for (const fault of await client.faults()) {
    const owner = /^experiment:(.+)$/.exec(String(fault.spec.description ?? ''))?.[1];
    if (!owner || owner === experiment.name) continue;
    const touches = faultTargets(fault.spec).some((n) => targets.has(n));
    if (touches) throw new Error(`experiment ${owner} holds faults on these targets (${fault.id}): one game day at a time`);
  }
  await note(`preflight: ${sidecars.length} sidecars ready on version ${version}; targets ${[...targets].join(', ') || 'none'} free`);
}

function loadTarget(experiment: Experiment, snapshot: Snapshot): { url: string; host?: string } {
  if (experiment.load.url) return { url: experiment.load.url };
  const entry = experiment.load.entry!;
  const sidecar = snapshot.sidecars.find((s) => s.service === entry);
  if (!sidecar) throw new Error(`load.entry: no sidecar fronts service "${entry}"`);
  return { url: `http://${sidecar.inbound}`, host: entry };
}

/** The first halt condition that holds over its trailing window, as a reason; else undefined. */
function haltReason(experiment: Experiment, recording: Recording): string | undefined {
  const now = Date.now();
  for (const h of experiment.halt as HaltConfig[]) {
    if (h.availability) {
      const samples = samplesFor(recording, h.availability.service, { name: 'halt', from: now - h.availability.for, to: now });
      const value = availability(samples);
      if (samples.length >= 10 && value < h.availability.below) return `availability of ${h.availability.service} ${value.toFixed(1)} % < ${h.availability.below} % for ${h.availability.for} ms`;
    } else if (h.latency) {
      const samples = samplesFor(recording, h.latency.service, { name: 'halt', from: now - h.latency.for, to: now }).filter((s) => s.status > 0);
      const value = percentile(samples, h.latency.percentile);
      if (samples.length >= 10 && value > h.latency.above) return `p${h.latency.percentile} of ${h.latency.service} ${value.toFixed(0)} ms > ${h.latency.above} ms for ${h.latency.for} ms`;
    }
  }
  return undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
