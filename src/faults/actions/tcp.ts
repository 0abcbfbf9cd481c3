// tcp: an L4 fault on a sidecar tcp listener, one of Toxiproxy's toxics in one direction of each
// connection it picks. Not an HTTP action: the sidecar's tcp listeners apply it (faults/tcp/).
import { z } from 'zod';
import { Duration, Name } from '../../config/primitives.ts';
import { oneOf } from '../fields.ts';
import { defineAction } from './action.ts';

const TOXICS = ['latency', 'bandwidth', 'resetPeer', 'timeout', 'slicer', 'limitData'] as const;

const Tcp = z
  .strictObject({
    listener: Name.meta({ description: 'the name of the sidecar tcp listener it acts on' }),
    direction: z.enum(['upstream', 'downstream']).default('downstream').meta({ description: 'upstream: bytes to the server; downstream: bytes back' }),
    latency: z.strictObject({ latency: Duration, jitter: Duration.default(0) }).optional(),
    bandwidth: z.strictObject({ bytesPerSecond: z.int().min(1) }).optional(),
    resetPeer: z.strictObject({ after: Duration.default(0) }).optional(),
    timeout: z.strictObject({ after: Duration.default(0).meta({ description: '0: hold the connection open forever' }) }).optional(),
    slicer: z.strictObject({ averageSize: z.int().min(1), sizeVariation: z.int().min(0).default(0), delay: Duration.default(0) }).optional(),
    limitData: z.strictObject({ bytes: z.int().min(0) }).optional(),
  })
  .superRefine(oneOf(TOXICS, 'toxic'))
  .meta({ description: 'an L4 fault on a sidecar tcp listener (Toxiproxy\'s toxics)' });

export const tcp = defineAction({
  name: 'tcp',
  layer: 'l4',
  schema: Tcp,
  example: { listener: 'orders-db', latency: { latency: '100ms' } },
  durations: ['latency.latency', 'latency.jitter', 'resetPeer.after', 'timeout.after', 'slicer.delay'],
  references: (config) => [{ path: ['tcp', 'listener'], kind: 'tcpListener', names: [config.listener] }],
});
