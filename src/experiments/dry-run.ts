// `faultline run --dry-run`: the experiment validated and each fault resolved against the mesh — the
// mesh file, or a running control plane's config — printing its blast radius (services, endpoints,
// share of traffic it can touch). Nothing is injected.
import { basename, dirname, resolve } from 'node:path';
import { loadConfigFile } from '../config/load.ts';
import { compileSnapshot, type Snapshot } from '../config/snapshot.ts';
import type { EndpointSpec } from '../config/specs.ts';
import { actionName, faultTargets } from '../faults/actions/index.ts';
import { select } from '../faults/endpoints.ts';
import { targetClient } from './mesh-client.ts';
import type { Progress } from './progress.ts';
import type { Journal, RunResult } from './journal.ts';
import type { Experiment } from './spec.ts';

export async function dryRun(experiment: Experiment, file: string, seed: number, progress: Progress): Promise<RunResult> {
  progress.line(`${(await blastRadius(experiment, file, seed)).join('\n')}\n`);
  const journal = { experiment: experiment.name, file, seed } as Journal;
  return { outcome: 'passed', exitCode: 0, dir: '', journal };
}

/** The dry run's lines: each fault's services, endpoints and share of traffic (the console shows them too). */
export async function blastRadius(experiment: Experiment, file: string, seed: number): Promise<string[]> {
  let snapshot: Snapshot;
  if ('mesh' in experiment.target) {
    const meshFile = resolve(dirname(file), experiment.target.mesh);
    snapshot = compileSnapshot((await loadConfigFile(meshFile)).config, meshFile);
  } else {
    snapshot = (await (await targetClient(experiment.target, file)).snapshot()).snapshot;
  }
  const lines = [`dry run of ${experiment.name} (${basename(file)}), seed ${seed}: nothing injected`, ''];
  const cohort = experiment.load.cohort ? experiment.load.cohort.percent / 100 : 1;
  for (const step of experiment.method) {
    const f = step.fault;
    const targets = faultTargets(f);
    const services = targets.length > 0 ? targets : [...snapshot.services.keys()];
    // A fault on chosen instances: the ones the run's seed chooses (the runner gives every fault that seed).
    const selector = f.match.endpoints;
    const chosen = (list: readonly EndpointSpec[]) => (selector ? select(selector, seed, list) : undefined);
    const endpoints = services.flatMap((s) => {
      const list = snapshot.services.get(s)?.endpoints;
      if (!list) return [`${s}: no such service`];
      const picked = chosen(list);
      return list.filter((e) => !picked || picked.has(e.address)).map((e) => `${s} ${e.address}`);
    });
    lines.push(`${f.id}: at ${step.at} ms for ${step.duration} ms, ${actionName(f)} at ${f.partition ? 'every connection' : f.at}`);
    lines.push(`  services  ${services.join(', ')}`);
    lines.push(`  endpoints ${endpoints.length}${selector ? ` (chosen by seed ${seed})` : ''}: ${endpoints.join('; ')}`);
    lines.push(`  traffic   up to ${(f.percent * cohort).toFixed(2)} % of matching requests${experiment.load.cohort ? ` (the experiment cohort is ${experiment.load.cohort.percent} % of the load)` : ''}`);
  }
  return lines;
}

