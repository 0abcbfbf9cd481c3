// The data plane sizes its own V8 heap (issue 24). Imported first by the CLI, before any other module
// is loaded: for `faultline sidecar` and `faultline up` (whose process carries the sidecars), when
// neither node's own flags nor NODE_OPTIONS already give --max-semi-space-size, the process replaces
// itself (process.execve: same pid, nothing left behind) with the same command under
// SIDECAR_HEAP_FLAGS. The young generation is what an idle-looking proxy grows under load: V8's
// default semi-space lets it reach tens of MiB between scavenges. In bench:cost (docs/benchmarks.md,
// "Data plane cost") a loaded sidecar held 193–224 MiB with V8's default, 150 with 4 MiB semi-spaces,
// 146 with 2; the profile's GC share was ~3 % at 8, 5 % at 4 and 9 % at 2: 4 is the trade.
// To choose other sizes, give them yourself (they win): NODE_OPTIONS='--max-semi-space-size=8' or
// `node --max-semi-space-size=8 dist/cli/main.js sidecar ...`; FAULTLINE_HEAP=default keeps V8's own.

export const SIDECAR_HEAP_FLAGS = ['--max-semi-space-size=4'];

const command = process.argv[2];
const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((flag) => flag.startsWith('--max-semi-space-size'));
if (
  (command === 'sidecar' || command === 'up') &&
  !given &&
  process.env.FAULTLINE_HEAP !== 'default' &&
  typeof process.execve === 'function'
) {
  process.execve(process.execPath, [process.execPath, ...process.execArgv, ...SIDECAR_HEAP_FLAGS, ...process.argv.slice(1)], { ...process.env });
}
