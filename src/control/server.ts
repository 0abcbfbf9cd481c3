// `faultline control`: the control plane process — its state (plane.ts) behind its API (api.ts) on one
// listener, the desired state kept in a file store, and the merged event stream fed from each
// connected sidecar's own /events.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { ErrorCode, FaultlineError, describe } from '../errors.ts';
import { silentLogger, type Logger } from '../telemetry/log.ts';
import { createControlApp, type IdentityIssuer } from './api.ts';
import { EventCollector } from './collector.ts';
import { ControlPlane } from './plane.ts';
import { FileStore } from './store.ts';

export interface ControlPlaneOptions {
  readonly listen: string;
  readonly token: string;
  readonly stateDir: string;
  readonly configFile?: string;
  readonly log?: Logger;
  readonly identity?: IdentityIssuer;
}

export interface RunningControlPlane {
  readonly plane: ControlPlane;
  readonly url: string;
  close(): Promise<void>;
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<RunningControlPlane> {
  const log = options.log ?? silentLogger;
  let configText: string | undefined;
  if (options.configFile) {
    try {
      configText = await readFile(options.configFile, 'utf8');
    } catch (error) {
      throw new FaultlineError(ErrorCode.ConfigUnreadable, `cannot read config ${options.configFile}: ${describe(error)}`, { cause: error });
    }
  }
  const plane = await ControlPlane.open(new FileStore(options.stateDir), log, configText, options.configFile);
  const collector = new EventCollector(plane, options.token, log);
  const server: Server = createServer(createControlApp(plane, options.token, options.identity));
  const colon = options.listen.lastIndexOf(':');
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(options.listen.slice(colon + 1)), options.listen.slice(0, colon).replace(/^\[|\]$/g, ''), () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const url = `http://${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;
  log.info({ url, version: plane.state.version }, 'control plane started');
  return {
    plane,
    url,
    async close() {
      collector.close();
      plane.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
