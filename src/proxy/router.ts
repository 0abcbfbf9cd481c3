// Route layer: the first route (in config order) whose match holds, then one of its weighted
// destinations. The destination is chosen once per request; attempts within it balance anew.
import type { DestinationSpec, RouteSpec } from '../config/snapshot.ts';
import { noRoute } from '../errors.ts';
import type { Layer, RequestContext } from './types.ts';

export const route: Layer = (next) => (ctx) => {
  const matched = findRoute(ctx);
  if (!matched) return Promise.reject(noRoute(ctx.host, ctx.pathname));
  ctx.route = matched;
  ctx.destination = pickDestination(matched, Math.random());
  return next(ctx);
};

export function findRoute(ctx: Pick<RequestContext, 'snapshot' | 'host' | 'pathname' | 'method' | 'headers' | 'query'>): RouteSpec | undefined {
  const input = {
    host: ctx.host,
    path: ctx.pathname,
    method: ctx.method,
    headers: ctx.headers,
    get query() {
      return ctx.query;
    },
  };
  return ctx.snapshot.routes.find((r) => r.matches(input));
}

/** Weighted choice; `draw` is uniform in [0, 1). */
export function pickDestination(route: RouteSpec, draw: number): DestinationSpec {
  let remaining = draw * route.totalWeight;
  for (const destination of route.destinations) {
    if (remaining < destination.weight) return destination;
    remaining -= destination.weight;
  }
  return route.destinations.findLast((d) => d.weight > 0)!;
}
