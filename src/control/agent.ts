// A sidecar run by the control plane (`faultline sidecar --control URL`): its config and runtime
// faults come from the watch stream; it starts from the control plane's snapshot, or from the copy
// kept locally when the control plane is down, and from then on applies each new snapshot as it comes.
import { SidecarIdentity } from '../identity/provider.ts';
import { Sidecar, resolveSidecar } from '../proxy/sidecar.ts';
import { silentLogger, type Logger } from '../telemetry/log.ts';
import { ControlClient } from './client.ts';

export interface ControlledSidecarOptions {
  readonly url: string;
  readonly token: string;
  /** The sidecar's name in the config (or its service's, when it has one sidecar). */
  readonly name: string;
  readonly stateDir: string;
  readonly log?: Logger;
  readonly accessLog?: string;
  /** How long to wait for the control plane before starting from the kept snapshot. */
  readonly waitMs?: number;
}

export interface ControlledSidecar {
  readonly sidecar: Sidecar;
  readonly client: ControlClient;
  close(): Promise<void>;
}

export async function startControlledSidecar(options: ControlledSidecarOptions): Promise<ControlledSidecar> {
  const log = options.log ?? silentLogger;
  const client = new ControlClient({ url: options.url, token: options.token, sidecar: options.name, stateDir: options.stateDir, log });
  let sidecar: Sidecar;
  let identity: SidecarIdentity | undefined;
  try {
    const first = await client.start(options.waitMs ?? 5_000);
    const mtls = first.snapshot.config.mtls;
    if (mtls.mode !== 'off') {
      const spec = resolveSidecar(first.snapshot, options.name);
      identity = await SidecarIdentity.obtain({
        url: options.url,
        token: options.token,
        sidecar: spec.name,
        service: spec.service,
        trustDomain: mtls.trustDomain,
        namespace: mtls.namespace,
        stateDir: options.stateDir,
        log,
      });
    }
    // Its runtime faults are the control plane's alone: its admin API refuses to change them (409).
    sidecar = await Sidecar.start({ name: options.name, snapshot: first.snapshot, log, faultsFrom: options.url, ...(identity && { identity }), ...(options.accessLog && { accessLog: options.accessLog }) });
    sidecar.faults.sync(first.state.faults);
    client.onState(({ state, snapshot }) => {
      // A config this sidecar cannot run (its entry gone) throws here: refused, acknowledged as such.
      if (snapshot.version !== sidecar.snapshot.version) sidecar.apply(snapshot);
      const synced = sidecar.faults.sync(state.faults);
      for (const refused of synced.refused) log.warn(refused, 'fault from the control plane refused by a limit');
      return { removed: synced.removed };
    });
  } catch (error) {
    identity?.close();
    await client.close();
    throw error;
  }
  return {
    sidecar,
    client,
    async close() {
      identity?.close();
      await client.close();
      await sidecar.close();
    },
  };
}
