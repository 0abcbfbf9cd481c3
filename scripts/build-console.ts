// `npm run build`: the console's bundle into dist/ui (src/control/console/assets.ts), and its size.
import { gzipSync } from 'node:zlib';
import { writeConsole, BUILT_UI } from '../src/control/console/assets.ts';

const assets = await writeConsole();
for (const [name, { body }] of assets.files) {
  process.stdout.write(`${BUILT_UI}${name}  ${(body.length / 1024).toFixed(1)} kB, ${(gzipSync(body, { level: 9 }).length / 1024).toFixed(1)} kB gzip\n`);
}
