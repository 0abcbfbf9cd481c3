// Test glue for hosts as network namespaces: an HTTP server inside a host, and one HTTP request made
// from inside a host (a Node child in the namespace: the test process itself stays in the root one).
import type { ChildProcess } from 'node:child_process';
import type { Host, HostNetwork } from '../../src/control/hosts.ts';
import { CLI } from './process.ts';

const SERVE = `
const [port, host, body] = JSON.parse(process.argv[1]);
require('node:http').createServer((req, res) => {
  const source = req.headers['x-faultline-source'];
  res.end(source ? body + ' to ' + source : body);
}).listen(port, host, () => console.log('listening'));`;

const REQUEST = `
const [url, headers, timeoutMs, method, payload] = JSON.parse(process.argv[1]);
const done = (answer) => { console.log(JSON.stringify(answer)); process.exit(0); };
let started;
// A stream that never ends (an event stream) gives what came by the deadline.
setTimeout(() => done(started ? { status: started.status, body: started.body, cut: true } : { error: 'timeout' }), timeoutMs).unref();
const req = require('node:http').request(url, { headers, method: method ?? "GET" }, (res) => {
  started = { status: res.statusCode, body: '' };
  res.on('data', (d) => (started.body += d));
  res.on('end', () => done({ status: res.statusCode, body: started.body }));
});
if (payload != null) req.write(payload);
req.on('error', (e) => done({ error: e.code ?? e.message }));
req.end();`;

export type Answer = { status: number; body: string; cut?: boolean } | { error: string };

/**
 * An HTTP server in `host` on `listen` (host:port) answering every request with `body` — followed by
 * ` to <source>` when the request says who sends it (x-faultline-source, as a sidecar sets it) —
 * resolves once it listens.
 */
export function serveIn(hosts: HostNetwork, host: Host, listen: string, body: string): Promise<ChildProcess> {
  const colon = listen.lastIndexOf(':');
  const child = hosts.run(host, process.execPath, ['-e', SERVE, JSON.stringify([Number(listen.slice(colon + 1)), listen.slice(0, colon), body])], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d));
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`server in ${host.name} exited with ${code}: ${err}`)));
  });
}

/** One GET from inside `host`: the status and body, or the error's code (ECONNREFUSED, EHOSTUNREACH, timeout, …). */
export function requestFrom(hosts: HostNetwork, host: Host, url: string, options: { headers?: Record<string, string>; timeoutMs?: number; method?: string; body?: string } = {}): Promise<Answer> {
  const child = hosts.run(host, process.execPath, ['-e', REQUEST, JSON.stringify([url, options.headers ?? {}, options.timeoutMs ?? 2_000, options.method, options.body])], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.stderr!.on('data', (d: Buffer) => (err += d));
    child.once('exit', (code) => (code === 0 && out ? resolve(JSON.parse(out) as Answer) : reject(new Error(`request from ${host.name} exited with ${code}: ${err}`))));
  });
}

/** A faultline command run inside `host`, to its end: exit code and output. */
export function faultlineIn(hosts: HostNetwork, host: Host, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = hosts.run(host, process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FAULTLINE_LOG_LEVEL: 'warn', ...env } });
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d));
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
