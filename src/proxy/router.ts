// Route layer: the first route (in config order) whose match holds, then one of its weighted
// destinations. The destination is chosen once per request; attempts within it balance anew.
import type { RouteInput } from '../config/matchers.ts';
import type { DestinationSpec, RouteSpec } from '../config/snapshot.ts';
import { noRoute } from '../errors.ts';
import type { Layer, RequestContext } from '../http/types.ts';

export const route: Layer = (next) => (ctx) => {
  const matched = findRoute(ctx);
  if (!matched) return Promise.reject(noRoute(ctx.host, ctx.pathname));
  ctx.route = matched;
  ctx.destination = pickDestination(matched, Math.random());
  return next(ctx);
};

/** The first route whose match holds; the context is what the matchers read (no copy of it is made). */
export function findRoute(ctx: RouteInput & Pick<RequestContext, 'snapshot'>): RouteSpec | undefined {
  for (const route of ctx.snapshot.routes) if (route.matches(ctx)) return route;
  return undefined;
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
