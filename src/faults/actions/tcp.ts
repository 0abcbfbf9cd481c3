// tcp: an L4 fault on a sidecar tcp listener, one of Toxiproxy's toxics in one direction of each
// connection it picks. Not an HTTP action: the sidecar's tcp listeners apply it (faults/tcp/).
import { z } from 'zod';
import { Name } from '../../config/primitives.ts';
import { oneOf, optionalFields } from '../fields.ts';
import { TOXICS } from '../tcp/toxics/index.ts';
import { defineAction } from './action.ts';

const Tcp = z
  .strictObject({
    listener: Name.meta({ description: 'the name of the sidecar tcp listener it acts on' }),
    direction: z.enum(['upstream', 'downstream']).default('downstream').meta({ description: 'upstream: bytes to the server; downstream: bytes back' }),
    ...optionalFields(TOXICS),
  })
  .superRefine(oneOf(TOXICS.map((t) => t.name), 'toxic'))
  .meta({ description: 'an L4 fault on a sidecar tcp listener (Toxiproxy\'s toxics)' });

export const tcp = defineAction({
  name: 'tcp',
  layer: 'l4',
  schema: Tcp,
  example: { listener: 'orders-db', latency: { latency: '100ms' } },
  durations: TOXICS.flatMap((t) => (t.durations ?? []).map((path) => `${t.name}.${path}`)),
  references: (config) => [{ path: ['tcp', 'listener'], kind: 'tcpListener', names: [config.listener] }],
});
