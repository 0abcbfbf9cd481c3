// faultline lint end to end, as issue 21 asks: a game day lint suggests for a timeout inversion, run on a
// small three-service mesh, fails exactly as the finding predicted. The mesh a → b → c (real apps,
// fixtures/chain.ts, each calling the next through its sidecar) gives up on b after 1 s while b allows c
// 4 s. `faultline lint --suggest` (the CLI, a child process) finds the inversion and writes its game
// day: c slowed for b by 2.5 s, the hypothesis "availability of b ≥ 99 %". Run by the real runner (its
// fault held 4 s instead of 10, to keep the suite fast), it fails as predicted: b's availability
// falls under the fault, every failure at the edge surfaces at a → b where the route timeout acted
// (none at b → c, whose calls end, late, in their time), and the report lists the finding as
// confirmed. Then a's timeout raised above what b may take: lint finds no inversion.
//
// Timeouts are a second and more, not the hundreds of milliseconds of a real mesh, so that a busy
// machine's stalls cannot fail the baseline (the runner then injects nothing); nothing here sleeps.
import { expect } from 'chai';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import type { Analysis } from '../../src/analysis/types.ts';
import { runExperiment } from '../../src/experiments/runner.ts';
import { writeReportsLine } from '../../src/reports/write.ts';
import { freeAddress } from '../helpers/net.ts';
import { runCli } from '../helpers/process.ts';

const CHAIN = fileURLToPath(new URL('./fixtures/chain.ts', import.meta.url));
const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;

/** The mesh a → b → c on free ports, each app started by the mesh; a's route to b times out after `aToB`. */
async function chainMesh(dir: string, aToB: string): Promise<string> {
  const chain = [['a', 'b'], ['b', 'c'], ['c']] as const;
  const apps = new Map<string, string>();
  for (const [service] of chain) apps.set(service, await freeAddress());
  const sidecars = [];
  for (const [service, next] of chain) {
    sidecars.push({ service, app: apps.get(service), outbound: await freeAddress(), inbound: await freeAddress(), admin: await freeAddress(), command: ['node', CHAIN, service, ...(next ? [next] : [])] });
  }
  const file = join(dir, 'mesh.yaml');
  await writeFile(file, stringify({
    mesh: { name: 'chain' },
    // What each app calls (fixtures/chain.ts declares no timeout of its own): lint's call graph.
    services: chain.map(([service, next]) => ({ name: service, endpoints: [{ address: apps.get(service) }], ...(next && { calls: [next] }) })),
    routes: [
      { name: 'a-to-b', match: { host: 'b' }, destinations: [{ service: 'b' }], timeout: aToB },
      { name: 'b-to-c', match: { host: 'c' }, destinations: [{ service: 'c' }], timeout: '4s' },
    ],
    sidecars,
  }));
  return file;
}

interface LintJson {
  counts: { error: number };
  findings: { rule: string; severity: string; service: string; path: string[]; route: string; at: { line: number; field: string }; message: string; predicts: { signature: { hop: string; acted: string[] } } }[];
}

describe('faultline lint end to end: the suggested game day for a timeout inversion', function () {
  this.timeout(120_000);

  it('fails exactly as the finding predicted, the report confirms it, and the fixed mesh lints clean', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faultline-lint-e2e-'));
    const mesh = await chainMesh(dir, '1s');

    // lint, as a pull request's check would run it: exit 1 on the error, the game day written.
    const linted = await runCli(['lint', mesh, '--json', '--suggest', join(dir, 'suggested')], 30_000);
    expect(linted.code, linted.stderr).to.equal(1);
    const found = (JSON.parse(linted.stdout) as LintJson).findings.filter((f) => f.rule === 'timeout-inversion');
    expect(found).to.have.length(1);
    const [inversion] = found;
    expect(inversion).to.deep.include({ severity: 'error', service: 'a', route: 'a-to-b' });
    expect(inversion!.path).to.deep.equal(['a', 'b', 'c']);
    expect(inversion!.at.field).to.equal('routes[0].timeout');
    expect(inversion!.message).to.equal("a gives up on b after 1s (route a-to-b's timeout of 1s), but b may take 4s on its own calls (c 4s)");
    expect(inversion!.predicts.signature).to.deep.equal({ hop: 'a → b', acted: ['route-timeout', 'timeout', 'per-try-timeout'] });
    const [, suggestedFile] = /^suggested (\S+) {2}\(timeout-inversion a → b → c\)$/m.exec(linted.stderr) ?? [];
    expect(suggestedFile, linted.stderr).to.be.a('string');
    const validated = await runCli(['validate', suggestedFile!], 30_000);
    expect(validated.code, validated.stdout + validated.stderr).to.equal(0);

    // The game day as suggested, its fault held 4 s instead of 10: c 2.5 s slow for b, b's availability the hypothesis.
    const suggested = parse(await readFile(suggestedFile!, 'utf8')) as { name: string; load: { entry: string; rate: number }; phases: Record<string, string>; steadyState: unknown[]; method: { duration: string; fault: { id: string; match: unknown; at: string; delay: { fixed: string } } }[] };
    expect(suggested.load).to.deep.equal({ entry: 'a', rate: 20 });
    expect(suggested.phases).to.deep.equal({ warmup: '1s', baseline: '3s', recovery: '3s' });
    expect(suggested.steadyState).to.deep.equal([{ availability: { service: 'b', min: 99 } }]);
    expect(suggested.method).to.have.length(1);
    expect(suggested.method[0]!.fault).to.deep.include({ match: { source: 'b', destination: 'c' }, at: 'inbound', delay: { fixed: '2.5s' } });
    expect(suggested.method[0]!.duration).to.equal('10s');
    suggested.method[0]!.duration = '4s';
    const short = join(dir, 'suggested', 'short.yaml');
    await writeFile(short, stringify(suggested));
    const faultId = suggested.method[0]!.fault.id;

    const result = await runExperiment({ file: short, out: join(dir, 'reports'), seed: 1, stream: quiet, report: writeReportsLine });
    expect([result.outcome, result.exitCode], result.journal.reason ?? '').to.deep.equal(['failed', 1]);
    const report = JSON.parse(await readFile(join(result.dir, 'report.json'), 'utf8')) as Analysis;

    // The hypothesis the finding named held before the fault and failed under it.
    const verdict = (id: string) => report.hypotheses.find((h) => h.id === id)!;
    expect(verdict('steadyState[0]@baseline')).to.deep.include({ outcome: 'pass', hypothesis: 'availability of b ≥ 99 %' });
    expect(verdict('steadyState[0]@method')).to.deep.include({ outcome: 'fail', hypothesis: 'availability of b ≥ 99 %' });

    // Every failure the fault made surfaced at a → b, where the route timeout acted; none at b → c.
    const causes = report.attribution.causes.filter((c) => c.faults.includes(faultId));
    expect(causes.map((c) => [c.hop, c.sidecar, c.acted]), JSON.stringify(report.attribution.causes)).to.deep.equal([['a → b', 'a', 'route-timeout']]);
    expect(report.attribution.causes.some((c) => c.hop === 'b → c')).to.equal(false);
    const failures = causes[0]!.failures;
    // 20 requests a second for the fault's 4 s: most of them (a stalled machine sends a few late).
    expect(failures).to.be.within(40, 100);
    // b's own calls to c ended, late but in their time: they never mattered.
    // (A delay still running when the fault is removed ends then: those calls took less than 2.5 s.)
    const events = (await readFile(join(result.dir, 'events.ndjson'), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; direction?: string; source?: string; service?: string; status?: number; flags?: string[] });
    const bToC = events.filter((e) => e.type === 'request.done' && e.direction === 'outbound' && e.source === 'b' && e.service === 'c');
    const delayed = bToC.filter((e) => e.flags!.includes('DI'));
    expect(delayed.length).to.be.at.least(failures);
    expect(bToC.filter((e) => e.status !== 200), 'b → c calls that failed').to.deep.equal([]);

    // The report lists the finding as confirmed, with the count of failures it rests on.
    const confirmed = report.lint!.findings.filter((f) => f.rule === 'timeout-inversion');
    expect(confirmed).to.have.length(1);
    expect(confirmed[0]).to.deep.include({ status: 'confirmed', failures, elsewhere: 0, faults: [faultId], failedHypotheses: ['steadyState[0]@method'] });
    expect(confirmed[0]!.path).to.deep.equal(['a', 'b', 'c']);
    const markdown = await readFile(join(result.dir, 'report.md'), 'utf8');
    expect(markdown).to.match(/\| CONFIRMED \| timeout-inversion \(error\): a gives up on b after 1s/);
    expect(await readFile(join(result.dir, 'report.html'), 'utf8')).to.match(/<table id="lint-findings">[\s\S]*badge fail">confirmed</);

    // The fix: a waits for b longer than b may take. No inversion left.
    const fixed = (await readFile(mesh, 'utf8')).replace(/timeout: 1s/, 'timeout: 5s');
    await writeFile(mesh, fixed);
    const relinted = await runCli(['lint', mesh, '--json'], 30_000);
    expect(relinted.code, relinted.stdout + relinted.stderr).to.equal(0);
    expect((JSON.parse(relinted.stdout) as LintJson).findings.map((f) => f.rule)).to.not.include('timeout-inversion');

  });
});
