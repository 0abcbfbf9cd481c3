// The console's page and assets, built from npm packages (preact, htm, @dagrejs/dagre) by esbuild into
// one hashed JavaScript file and one stylesheet; nothing is fetched at run time, from anywhere. Run
// from the sources (node src/…, the tests, npm start), it is built in memory on first use, so it is
// never stale; run from a build (dist/, `npm run build`), it is read from dist/ui, written by
// scripts/build-console.ts, and esbuild is not needed.
import { readFile, readdir, mkdir, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ConsoleAssets {
  /** The page: no inline script or style (the Content-Security-Policy allows none). */
  readonly index: string;
  /** By file name (under /ui/assets/): body and media type. */
  readonly files: ReadonlyMap<string, { readonly body: Buffer; readonly type: string }>;
}

const UI_SOURCES = fileURLToPath(new URL('../../console/ui/', import.meta.url));
/** Where a build keeps the bundle (next to dist/cli, dist/control…). */
export const BUILT_UI = fileURLToPath(new URL('../../../dist/ui/', import.meta.url));
const FROM_SOURCES = import.meta.url.endsWith('.ts');

const TYPES: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

let loading: Promise<ConsoleAssets> | undefined;

/** The assets, built or read once per process. */
export function consoleAssets(): Promise<ConsoleAssets> {
  loading ??= (FROM_SOURCES ? buildConsole() : readBuilt(BUILT_UI)).catch((error: unknown) => {
    loading = undefined;
    throw error;
  });
  return loading;
}

/** Bundles the console with esbuild (a devDependency: only a build, or a run from the sources, needs it). */
export async function buildConsole(): Promise<ConsoleAssets> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: [join(UI_SOURCES, 'main.ts')],
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    outdir: '/ui',
    entryNames: 'console-[hash]',
    write: false,
    legalComments: 'none',
    logLevel: 'silent',
  });
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const file of result.outputFiles) {
    const name = file.path.slice(file.path.lastIndexOf('/') + 1);
    files.set(name, { body: Buffer.from(file.contents), type: TYPES[name.slice(name.lastIndexOf('.'))] ?? 'application/octet-stream' });
  }
  return { index: page(files), files };
}

/** `npm run build`: the bundle written to dist/ui. */
export async function writeConsole(dir = BUILT_UI): Promise<ConsoleAssets> {
  const assets = await buildConsole();
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  for (const [name, { body }] of assets.files) await writeFile(join(dir, name), body);
  return assets;
}

async function readBuilt(dir: string): Promise<ConsoleAssets> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    throw new Error(`the console is not built: no ${dir} (run npm run build)`);
  }
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const name of names) files.set(name, { body: await readFile(join(dir, name)), type: TYPES[name.slice(name.lastIndexOf('.'))] ?? 'application/octet-stream' });
  return { index: page(files), files };
}

function page(files: ReadonlyMap<string, unknown>): string {
  const names = [...files.keys()];
  const script = names.find((n) => n.endsWith('.js'));
  const style = names.find((n) => n.endsWith('.css'));
  if (!script) throw new Error('the console bundle has no script');
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<title>faultline console</title>',
    ...(style ? [`<link rel="stylesheet" href="/ui/assets/${style}">`] : []),
    `<script type="module" src="/ui/assets/${script}"></script>`,
    '</head>',
    '<body><div id="app"><noscript>The faultline console needs JavaScript.</noscript></div></body>',
    '</html>',
    '',
  ].join('\n');
}
