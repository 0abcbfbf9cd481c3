// Runs the faultline CLI as a real child process, on the same Node as the tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], timeoutMs = 15_000, env: NodeJS.ProcessEnv = process.env): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Starts `faultline sidecar` and resolves with the addresses it prints once listening. */
export function startSidecarProcess(
  config: string,
  name: string,
  extra: string[] = [],
): Promise<{ child: ChildProcess; addresses: Record<string, string>; stderr: () => string }> {
  return startSidecarWith(['--config', config, '--service', name, ...extra]);
}

/** `faultline sidecar ARGS` as a child process, resolved with the addresses it prints once it listens. */
export async function startSidecarWith(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; addresses: Record<string, string>; stderr: () => string }> {
  const child = spawn(process.execPath, [CLI, 'sidecar', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FAULTLINE_LOG_LEVEL: 'warn', ...env },
  });
  const started = await firstLine(child, 'sidecar');
  return { child, addresses: started.printed, stderr: started.stderr };
}

/**
 * A faultline process's first stdout line, parsed: what it prints once it listens (its addresses, its
 * URL). Rejects with what it said on stderr when it exits first.
 */
export function firstLine(child: ChildProcess, what: string): Promise<{ printed: Record<string, string>; stderr: () => string }> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d));
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('\n')) resolve({ printed: JSON.parse(out.split('\n')[0]!) as Record<string, string>, stderr: () => err });
    });
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}: ${err}`)));
  });
}

export function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** Resident set size of a process, in bytes (Linux). */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}
