// The HTML report of a game day on the hand-made analysis of fixture.ts: the charts (one SVG per kind
// and service, fault windows shaded and labelled, drawn by vega without a browser), the document
// (self-contained: no script, no external URL; every analysis string escaped), and the document as a
// real browser shows it: Debian's Chromium, headless, dumps the DOM after layout and takes a screenshot.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Analysis } from '../../src/analysis/types.ts';
import { CHART_HEIGHT, CHART_WIDTH, FAULT_FILL, renderCharts } from '../../src/reports/charts.ts';
import { ATTRIBUTION_ROWS, renderHtml } from '../../src/reports/html.ts';
import { FAULT_ID, HALT_REASON, fixtureAnalysis } from './fixture.ts';

const SVG_NS = 'http://www.w3.org/2000/svg';
const escaped = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

describe('reports: HTML', function () {
  this.timeout(60_000);

  describe('renderCharts', () => {
    it('draws one SVG per chart kind and service, each labelling the fault', async () => {
      const analysis = fixtureAnalysis();
      const charts = await renderCharts(analysis);
      const services = ['frontend', 'cart', 'payments'];
      expect(charts.map((c) => c.id)).to.deep.equal([...services.flatMap((s) => [`latency-${s}`, `errors-${s}`]), 'retries', 'breakers', 'propagation']);
      expect(charts).to.have.length(2 * services.length + 3);
      for (const chart of charts) {
        expect(chart.svg.startsWith('<svg'), chart.id).to.equal(true);
        expect(chart.svg, chart.id).to.contain(`xmlns="${SVG_NS}"`);
        expect(chart.svg, chart.id).to.match(/<\/svg>$/);
        expect(chart.title, chart.id).to.be.a('string').and.not.equal('');
        expect(chart.svg, `${chart.id} labels the fault`).to.contain(`>${escaped(FAULT_ID)}</text>`);
        expect(chart.svg, `${chart.id} escapes the fault id`).not.to.contain('<b>');
        expect(chart.svg, chart.id).not.to.match(/<(script|image|foreignObject)\b/);
      }
    });

    it('shades the fault window over the full height of every time chart and marks the halt', async () => {
      const charts = await renderCharts(fixtureAnalysis());
      // The fault acts from 10 s to the halt at 18 s of a 30 s run: x from 10/30 to 18/30 of the plot.
      const x = (seconds: number) => (seconds / 30) * CHART_WIDTH;
      for (const chart of charts.filter((c) => c.id !== 'propagation')) {
        const shade = new RegExp(`<path d="M([\\d.]+),0h([\\d.]+)v([\\d.]+)h-[\\d.]+Z" fill="${FAULT_FILL}" fill-opacity="[\\d.]+"/>`).exec(chart.svg);
        expect(shade, `${chart.id} has a fault window of fill ${FAULT_FILL}`).to.not.equal(null);
        expect(Number(shade![1])).to.be.closeTo(x(10), 0.01);
        expect(Number(shade![2])).to.be.closeTo(x(18) - x(10), 0.01);
        if (chart.id !== 'breakers') expect(Number(shade![3]), chart.id).to.equal(CHART_HEIGHT);
        const halt = /<line transform="translate\(([\d.]+),0\)" x2="0" y2="([\d.]+)" stroke="#b2182b"[^>]*stroke-dasharray/.exec(chart.svg);
        expect(halt, `${chart.id} marks the halt with a rule`).to.not.equal(null);
        expect(Number(halt![1])).to.be.closeTo(x(18), 0.01);
      }
      const breakers = charts.find((c) => c.id === 'breakers')!.svg;
      for (const state of ['closed', 'half-open', 'open']) expect(breakers).to.contain(`>${state}</text>`);
      const graph = charts.find((c) => c.id === 'propagation')!.svg;
      for (const service of ['frontend', 'cart', 'payments']) expect(graph).to.contain(`>${service}</text>`);
      expect(graph).to.contain('>400 calls · 37 errors · 33 propagated</text>');
    });

    it('draws nothing it has no data for, and never throws on an empty run', async () => {
      const a = fixtureAnalysis();
      const empty: Analysis = { ...a, timeseries: [], halts: [], windows: [], policies: { ...a.policies, retryTimeline: [], breakerTimeline: [] }, propagation: { nodes: [], edges: [] } };
      expect(await renderCharts(empty)).to.deep.equal([]);
      const html = await renderHtml({ ...empty, experiment: { ...a.experiment, outcome: null, reason: null, finishedAt: null, complete: false }, hypotheses: [], cohorts: null, regression: null, faults: [], attribution: { rows: [], totals: [], causes: [], unattributed: 0 }, score: { value: null, reason: 'no fault was injected', parts: [] } });
      expect(html).to.contain('INCOMPLETE');
      expect(html).to.contain('<strong>No resilience score</strong>: no fault was injected.');
      expect(html).not.to.contain('<figure');
      expect(html).not.to.contain('id="cohort"');
      expect(html).not.to.contain('id="regression"');
    });
  });

  describe('renderHtml', () => {
    it('is one self-contained document: no script, no external URL, no src or href', async () => {
      const html = await renderHtml(fixtureAnalysis());
      expect(html.startsWith('<!DOCTYPE html>')).to.equal(true);
      expect(html).to.match(/<\/html>\n$/);
      const urls = [...html.matchAll(/https?:\/\/[^\s"'<>)]*/gi)].map((m) => m[0]);
      expect(new Set(urls)).to.deep.equal(new Set([SVG_NS]));
      expect(html).not.to.match(/<script/i);
      expect(html).not.to.match(/\s(src|href|xlink:href|srcset|action|poster)\s*=/i);
      expect(html).not.to.match(/<(link|iframe|object|embed|img|base)\b/i);
      expect(html).not.to.match(/@import|url\((?!#)/i);
      expect(html).to.match(/<style>[\s\S]+<\/style>/);
    });

    it('escapes every string from the analysis', async () => {
      const html = await renderHtml(fixtureAnalysis());
      expect(html).to.contain('&lt;b&gt;');
      expect(html).to.contain('payments-&lt;b&gt;abort&lt;/b&gt;');
      expect(html).not.to.contain('<b>');
      expect(html).not.to.contain('</b>');
      expect(html).to.contain(escaped(HALT_REASON));
      expect(html).not.to.contain('<script>alert(1)</script>');
    });

    it('puts the summary first, the score with its parts, then verdicts, charts, faults, policies, attribution, cohort, regression', async () => {
      const a = fixtureAnalysis();
      const html = await renderHtml(a);
      expect(html).to.contain(`<title>Game day ${a.experiment.name}: HALTED</title>`);
      const order = ['id="summary"', 'id="verdicts"', 'class="chart"', 'id="faults"', 'id="policies"', 'id="attribution-totals"', 'id="attribution"', 'id="cohort"', 'id="regression"'].map((s) => html.indexOf(s));
      expect(order.every((i) => i > 0), String(order)).to.equal(true);
      expect(order).to.deep.equal(order.toSorted((x, y) => x - y));
      const summary = html.slice(html.indexOf('id="summary"'), html.indexOf('id="hypotheses"'));
      for (const fact of ['HALTED', 'Seed', '424242', 'Duration', '30 s', 'Resilience score 50.0 / 100', 'id="score-parts"', 'availability', 'retriesMask', 'breaker', 'recovers']) expect(summary).to.contain(fact);
      const verdicts = /<table id="verdicts">([\s\S]*?)<\/table>/.exec(html)![1]!;
      const rows = [...verdicts.matchAll(/<tr class="verdict (pass|fail|inconclusive)"[^>]*>([\s\S]*?)<\/tr>/g)];
      expect(rows.map((r) => r[1])).to.deep.equal(a.hypotheses.map((h) => h.outcome));
      for (const [i, h] of a.hypotheses.entries()) {
        for (const cell of [h.hypothesis, h.window, h.measured, h.objective, String(h.samples), h.outcome.toUpperCase()]) expect(rows[i]![2]).to.contain(escaped(cell));
      }
      const figures = [...html.matchAll(/<figure class="chart" id="chart-([a-z0-9-]+)">\s*<svg[\s\S]*?<\/svg>\s*<figcaption>[^<]+<\/figcaption>\s*<\/figure>/g)];
      expect(figures).to.have.length(9);
      expect(html).to.contain('0.226');
      expect(html).to.contain('Mann–Whitney');
    });

    it('lists the instances each fault hit, and each ejection with the sidecar that made it, its detector and why', async () => {
      const a = fixtureAnalysis();
      const html = await renderHtml(a);
      const faults = /<table id="faults">([\s\S]*?)<\/table>/.exec(html)![1]!;
      expect(faults).to.contain('<code>127.0.0.1:9103</code> ×120, <code>127.0.0.1:9101</code> ×44');
      const ejections = /<table id="policy-ejections">([\s\S]*?)<\/table>/.exec(html)![1]!;
      const j = a.policies.ejections[0]!;
      for (const cell of [j.sidecar, j.detector!, j.reason]) expect(ejections).to.contain(escaped(cell).replace(/'/g, '&#39;'));
    });

    it('shows at most 200 attribution rows, after the totals', async () => {
      const a = fixtureAnalysis();
      const row = a.attribution.rows[0]!;
      const many: Analysis = { ...a, attribution: { ...a.attribution, rows: Array.from({ length: 320 }, (_, i) => ({ ...row, requestId: `many-${i}` })) } };
      const html = await renderHtml(many);
      const table = /<table id="attribution">([\s\S]*?)<\/table>/.exec(html)![1]!;
      expect([...table.matchAll(/<tr>/g)]).to.have.length(ATTRIBUTION_ROWS + 1);
      expect(ATTRIBUTION_ROWS).to.equal(200);
      expect(html).to.contain('The first 200 of 320 calls.');
      expect(html.indexOf('id="attribution-totals"')).to.be.below(html.indexOf('id="attribution"'));
    });
  });

  describe('in a real browser (Debian chromium, headless)', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'faultline-html-'));
    });
    after(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('lays out every verdict row and chart, and screenshots as a real PNG', async () => {
      const chromium = await findChromium();
      expect(chromium, 'no chromium on PATH: install Debian\'s chromium (apt-get install -y chromium) to run the browser test of the HTML report').to.be.a('string');
      const analysis = fixtureAnalysis();
      const file = join(dir, 'report.html');
      await writeFile(file, await renderHtml(analysis));
      const url = pathToFileURL(file).href;
      const png = join(dir, 'report.png');
      const [dom] = await Promise.all([
        browse(chromium!, [`--user-data-dir=${join(dir, 'profile-dom')}`, '--dump-dom', url]),
        browse(chromium!, [`--user-data-dir=${join(dir, 'profile-shot')}`, `--screenshot=${png}`, '--window-size=1280,2000', url]),
      ]);

      expect(dom).to.contain('<table id="verdicts">');
      const verdicts = /<table id="verdicts">([\s\S]*?)<\/table>/.exec(dom)![1]!;
      expect([...verdicts.matchAll(/<tr class="verdict (?:pass|fail|inconclusive)"/g)]).to.have.length(analysis.hypotheses.length);
      // The browser parsed the analysis's markup as text.
      expect(dom).not.to.match(/<script/i);
      expect(dom).not.to.contain('<b>');
      expect(dom).to.contain('payments-&lt;b&gt;abort&lt;/b&gt;');

      const figures = [...dom.matchAll(/<figure class="chart" id="chart-([^"]+)">([\s\S]*?)<\/figure>/g)];
      expect(figures).to.have.length((await renderCharts(analysis)).length);
      for (const [, id, inner] of figures) {
        const svg = /<svg\b([^>]*)>/.exec(inner!);
        expect(svg, `figure ${id} holds an svg`).to.not.equal(null);
        const width = Number(/\swidth="([\d.]+)"/.exec(svg![1]!)?.[1]);
        const height = Number(/\sheight="([\d.]+)"/.exec(svg![1]!)?.[1]);
        expect(width, `${id} width`).to.be.above(0);
        expect(height, `${id} height`).to.be.above(0);
        expect(inner, `${id} has marks`).to.match(/<(path|line|text)\b/);
        expect(inner, `${id} has a caption`).to.match(/<figcaption>[^<]+<\/figcaption>/);
      }

      const shot = await readFile(png);
      expect(shot.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), 'PNG signature').to.equal(true);
      expect(shot.readUInt32BE(16), 'PNG width').to.equal(1280);
      expect(shot.readUInt32BE(20), 'PNG height').to.equal(2000);
      expect((await stat(png)).size).to.be.above(10 * 1024);
    });
  });
});

/** `chromium` (Debian's) or `chromium-browser` on PATH; null when neither is. */
async function findChromium(): Promise<string | null> {
  for (const name of ['chromium', 'chromium-browser']) {
    for (const folder of (process.env['PATH'] ?? '').split(delimiter).filter(Boolean)) {
      const candidate = join(folder, name);
      try {
        await access(candidate, constants.X_OK);
        return candidate;
      } catch {
        // not in this folder
      }
    }
  }
  return null;
}

/** Runs headless Chromium on a page and gives its standard output (the DOM, with --dump-dom). */
function browse(chromium: string, args: readonly string[]): Promise<string> {
  const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--no-first-run', '--no-default-browser-check', '--disable-extensions', '--disable-dev-shm-usage'];
  return new Promise((resolve, reject) => {
    execFile(chromium, [...flags, ...args], { timeout: 25_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${chromium} ${args.join(' ')} failed: ${error.message}\n${stderr.slice(-2000)}`));
      else resolve(stdout);
    });
  });
}
