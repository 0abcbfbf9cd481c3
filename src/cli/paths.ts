// Where the bundled demo and its game day live, for the commands that default to them.
import { fileURLToPath } from 'node:url';

export const DEMO_MESH = fileURLToPath(new URL('../../demo/mesh.yaml', import.meta.url));
/** The game day `npm start` runs. */
export const DEMO_EXPERIMENT = fileURLToPath(new URL('../../experiments/payments-aborts.yaml', import.meta.url));
