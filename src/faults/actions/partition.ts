// partition: calls between two sets of services fail as across a real network split. `reject`: the
// connection is refused at once (to the retry layer, a connect failure; at the destination's sidecar,
// the caller's connection is reset). `blackhole`: nothing comes back; the request hangs until the
// caller's timeout (or the caller) gives up — or until the partition is removed, when it goes through.
import { ErrorCode, MeshError, ResponseFlag } from '../../errors.ts';
import { hold } from '../hold.ts';
import type { PartitionConfig } from '../schema.ts';
import { resetByFault } from './abort.ts';
import type { FaultAction } from './index.ts';

export const partitionRefused = (id: string, source: string, destination: string): MeshError =>
  new MeshError(ErrorCode.FaultPartition, 503, ResponseFlag.UpstreamConnectFailure, `partition "${id}": ${source} cannot reach ${destination} (connection refused)`);

export function partitionAction(config: PartitionConfig): FaultAction {
  return {
    name: 'partition',
    plan: () => ({ mode: config.mode, direction: config.direction }),
    async run(ctx, next, { fault, point }) {
      if (config.mode === 'reject') {
        if (point === 'inbound') throw resetByFault(fault.id);
        throw partitionRefused(fault.id, ctx.source, ctx.destination?.service ?? 'unknown');
      }
      await hold(Infinity, ctx.cancellation, fault.removed);
      return next(ctx);
    },
  };
}
