// Inbound: every request goes to the one local application this sidecar fronts.
import type { EndpointState } from '../http/endpoint-state.ts';
import type { Layer } from '../http/types.ts';

export function toLocalApp(app: EndpointState): Layer {
  return (next) => (ctx) => {
    ctx.endpoint = app;
    return next(ctx);
  };
}
