// The data plane sizes its own V8 heap (issue 24). Imported first by the CLI, before any other module
// is loaded: for `faultline sidecar` and `faultline up` (whose process carries the sidecars), when
// neither node's own flags nor NODE_OPTIONS already give --max-semi-space-size, the process replaces
// itself (process.execve: same pid, nothing left behind) with the same command under
// SIDECAR_HEAP_FLAGS. The young generation is what an idle-looking proxy grows under load: V8's
// default semi-space lets it reach tens of MiB between scavenges; 2 MiB semi-spaces kept a loaded
// sidecar's RSS about 60 MiB lower in bench:cost (docs/benchmarks.md, "Data plane cost").
// To choose other sizes, give them yourself (they win): NODE_OPTIONS='--max-semi-space-size=8' or
// `node --max-semi-space-size=8 dist/cli/main.js sidecar ...`; FAULTLINE_HEAP=default keeps V8's own.

export const SIDECAR_HEAP_FLAGS = ['--max-semi-space-size=2'];

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
