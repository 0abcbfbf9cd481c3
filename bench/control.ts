// `npm run bench` (fifth part): config distribution at scale. A control plane process (the built CLI)
// and 1,000 simulated sidecars in this process, each holding a watch stream (its own socket) and
// acknowledging every snapshot it receives with a POST /v1/ack, as a sidecar did before acks rode its
// uplink (bench/fleet.ts simulates today's sidecar; this one keeps the route older sidecars use
// measured). Measured: the time from PUT /config
// until the last subscriber's acknowledgement is answered, over several changes; and the control
// plane's RSS with all of them connected.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { Processes, freePort, pinSelf } from './processes.ts';
import { readFileSync, existsSync } from 'node:fs';

const quick = process.argv.includes('--quick');
const SUBSCRIBERS = quick ? 200 : 1_000;
const CHANGES = quick ? 3 : 5;
const TOKEN = 'bench-token';
const CLI = existsSync('dist/cli/main.js') ? 'dist/cli/main.js' : 'src/cli/main.ts';

function meshConfig(round: number): object {
  return {
    mesh: { name: 'bench-control' },
    services: [{ name: 'svc', endpoints: [{ address: '127.0.0.1:1' }] }],
    routes: [{ name: 'r', match: { host: 'svc', headers: { 'x-round': { exact: String(round) } } }, destinations: [{ service: 'svc' }] }],
  };
}

/** A simulated sidecar: a watch stream; every snapshot acknowledged over a shared keep-alive agent. */
function subscribe(base: URL, name: string, acks: HttpAgent, onAck: (name: string, version: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: base.hostname, port: base.port, path: `/v1/watch?sidecar=${name}`, headers: { authorization: `Bearer ${TOKEN}` }, agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`watch ${res.statusCode}`));
      let buffer = '';
      let first = true;
      res.on('data', (chunk: Buffer) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = message.split('\n').find((l) => l.startsWith('data: '));
          if (!data) continue;
          const { version } = JSON.parse(data.slice(6)) as { version: string };
          const ack = httpRequest({ host: base.hostname, port: base.port, path: '/v1/ack', method: 'POST', agent: acks, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } }, (r) => {
            r.resume();
            r.on('end', () => onAck(name, version));
          });
          ack.end(JSON.stringify({ sidecar: name, version }));
          if (first) {
            first = false;
            resolve();
          }
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function main(): Promise<void> {
  const processes = new Processes();
  const pinning = pinSelf();
  const dir = await mkdtemp(join(tmpdir(), 'faultline-bench-control-'));
  await writeFile(join(dir, 'mesh.yaml'), stringify(meshConfig(0)));
  await writeFile(join(dir, 'token'), TOKEN);
  const port = await freePort();
  try {
    const line = await processes.start('control', [CLI, 'control', '--config', join(dir, 'mesh.yaml'), '--listen', `127.0.0.1:${port}`, '--token-file', join(dir, 'token'), '--state-dir', join(dir, 'state')], { FAULTLINE_LOG_LEVEL: 'warn' }, 1);
    const base = new URL((JSON.parse(line) as { control: string }).control);
    const pid = processes.pid('control');
    const rssIdle = rss(pid);
    const acks = new HttpAgent({ keepAlive: true, maxSockets: 64 });
    const acked = new Map<string, Set<string>>();
    let waiting: { version: string; done: () => void } | undefined;
    const onAck = (name: string, version: string) => {
      let names = acked.get(version);
      if (!names) acked.set(version, (names = new Set()));
      names.add(name);
      if (waiting && waiting.version === version && names.size === SUBSCRIBERS) waiting.done();
    };
    const connectStart = performance.now();
    for (let i = 0; i < SUBSCRIBERS; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, SUBSCRIBERS - i) }, (_, j) => subscribe(base, `sidecar-${i + j}`, acks, onAck)));
    }
    const connectMs = performance.now() - connectStart;
    const rssConnected = rss(pid);
    const times: number[] = [];
    for (let round = 1; round <= CHANGES; round++) {
      const start = performance.now();
      const response = await request(`${base.origin}/config`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}` }, body: stringify(meshConfig(round)) });
      const { version } = (await response.body.json()) as { version: string };
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`round ${round}: only ${acked.get(version)?.size ?? 0} of ${SUBSCRIBERS} acked within 30 s`)), 30_000);
        waiting = { version, done: () => (clearTimeout(timer), resolve()) };
        if ((acked.get(version)?.size ?? 0) === SUBSCRIBERS) waiting.done();
      });
      times.push(performance.now() - start);
    }
    const rssAfter = rss(pid);
    acks.destroy();
    const sorted = [...times].sort((a, b) => a - b);
    process.stdout.write([
      `node ${process.version}; ${SUBSCRIBERS} simulated sidecars (one watch socket each, acks over 64 keep-alive sockets); ${CHANGES} config changes; ${pinning}`,
      '',
      `| measure | value |`,
      '|---|---|',
      `| subscribers connected in | ${connectMs.toFixed(0)} ms |`,
      `| PUT /config → all ${SUBSCRIBERS} acknowledged (each change) | ${times.map((t) => t.toFixed(0)).join(', ')} ms |`,
      `| median, worst | ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} ms, ${sorted.at(-1)!.toFixed(0)} ms |`,
      `| control plane RSS: idle, ${SUBSCRIBERS} connected, after the changes | ${mib(rssIdle)}, ${mib(rssConnected)}, ${mib(rssAfter)} MiB |`,
      '',
      `Target: all acknowledged within 1 s of the PUT: ${sorted.at(-1)! <= 1_000 ? 'met' : 'NOT met'} (worst ${sorted.at(-1)!.toFixed(0)} ms).`,
      '',
    ].join('\n'));
  } finally {
    await processes.stopAll();
    process.exit(0);
  }
}

function rss(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);

await main();
