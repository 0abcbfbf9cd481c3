// partition: calls between two sets of services fail as across a real network split. `reject`: the
// connection is refused at once (to the retry layer, a connect failure; at the destination's sidecar,
// the caller's connection is reset). `blackhole`: nothing comes back; the request hangs until the
// caller's timeout (or the caller) gives up — or until the partition is removed, when it goes through.
import { z } from 'zod';
import { Name } from '../../config/primitives.ts';
import { ErrorCode, MeshError, ResponseFlag } from '../../errors.ts';
import { hold } from '../hold.ts';
import { resetByFault } from './abort.ts';
import { defineAction, type FaultAction } from './action.ts';

const Partition = z.strictObject({
  from: z.array(Name).min(1),
  to: z.array(Name).min(1),
  direction: z.enum(['both', 'one-way']).default('both').meta({ description: 'one-way: only calls from `from` to `to` are cut' }),
  mode: z.enum(['blackhole', 'reject']).default('blackhole').meta({
    description: 'blackhole: connections hang until the caller gives up; reject: refused at once',
  }),
});

export type PartitionConfig = z.output<typeof Partition>;

/** A partition is between services, not of calls matched to one: both sides are its targets and references. */
export const partition = defineAction({
  name: 'partition',
  layer: 'http',
  schema: Partition,
  example: { from: ['checkout'], to: ['payments'] },
  create: (config) => partitionAction(config),
  targets: (config) => [...config.from, ...config.to],
  references: (config) => [
    { path: ['partition', 'from'], kind: 'service', names: config.from },
    { path: ['partition', 'to'], kind: 'service', names: config.to },
  ],
  check: (_config, match) => (match.source || match.destination ? [{ path: ['match'], message: 'a partition names its services in from and to, not in match' }] : []),
});

export const partitionRefused = (id: string, source: string, destination: string): MeshError =>
  new MeshError(ErrorCode.FaultPartition, 503, ResponseFlag.UpstreamConnectFailure, `partition "${id}": ${source} cannot reach ${destination} (connection refused)`);

function partitionAction(config: PartitionConfig): FaultAction {
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
