// What a fault matches: calling and called services, routes, methods, paths, headers, and the
// instances of the called service (endpoints.ts). Its own
// module so that the actions, which read a fault's match for their targets, need not import the
// fault format that is built from them.
import { z } from 'zod';
import { Method, Name, StringMatch } from '../config/primitives.ts';
import { EndpointSelector } from './endpoints.ts';

const Names = z.union([Name, z.array(Name).min(1)]);

export const FaultMatch = z.strictObject({
  source: Names.optional().meta({ description: 'calling service(s)' }),
  destination: Names.optional().meta({ description: 'called service(s)' }),
  route: Names.optional().meta({ description: 'route name(s) (outbound only: inbound knows no route)' }),
  method: z.union([Method, z.array(Method).min(1)]).optional(),
  path: z.string().startsWith('/').optional(),
  pathPrefix: z.string().startsWith('/').optional(),
  pathRegex: z.string().optional(),
  headers: z.record(z.string(), StringMatch).optional(),
  endpoints: EndpointSelector.optional().meta({
    description: 'only calls that go to these instances of the destination (by labels, a seeded percent or count); needs destination, and at: attempt or inbound',
  }),
});

export type FaultMatchConfig = z.output<typeof FaultMatch>;
