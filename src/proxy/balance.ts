// Balance layer: pick an endpoint of the destination (service and subset) among the available ones,
// with Envoy's panic threshold (too few available → balance over all), and keep the load figures
// (requests in flight, latency EWMA) that least-request and EWMA balancing read.
import { performance } from 'node:perf_hooks';
import { noEndpoints, noHealthyUpstream } from '../errors.ts';
import type { PickRequest } from './balancer/index.ts';
import type { EndpointState } from '../http/endpoint-state.ts';
import type { Cluster, Clusters } from './endpoints.ts';
import { onResponseDone, type Layer } from '../http/types.ts';

export function balance(clusters: Clusters): Layer {
  return (next) => async (ctx) => {
    const destination = ctx.destination!;
    const cluster = clusters.get(destination.service)!;
    const endpoint = choose(cluster, cluster.subset(destination.subsetKey, destination.subset), ctx, ctx.tried);
    if (!endpoint) throw cluster.endpoints.length === 0 ? noEndpoints(destination.service) : noHealthyUpstream(destination.service, destination.subsetKey);
    ctx.endpoint = endpoint;
    const load = endpoint.load;
    load.active++;
    const started = performance.now();
    try {
      const response = await next(ctx);
      const now = performance.now();
      load.recordLatency(now - started, now, cluster.spec.loadBalancer.decayMs);
      onResponseDone(response, () => load.active--);
      return response;
    } catch (error) {
      load.active--;
      throw error;
    }
  };
}

function eligible(cluster: Cluster, members: readonly EndpointState[]): readonly EndpointState[] {
  // Nearly always every member is available: then the members are the candidates, with no copy made.
  let out = 0;
  for (let i = 0; i < members.length; i++) if (!members[i]!.available) out++;
  if (out === 0) return members;
  const available = members.filter((e) => e.available);
  const panic = available.length * 100 < members.length * cluster.spec.panicThreshold;
  return panic ? members : available;
}

/** A retry avoids the endpoints already tried, as long as another is eligible. */
function choose(cluster: Cluster, members: readonly EndpointState[], request: PickRequest, tried: Set<EndpointState> | undefined): EndpointState | undefined {
  let candidates = eligible(cluster, members);
  if (tried && tried.size > 0) {
    const untried = candidates.filter((e) => !tried.has(e));
    if (untried.length > 0) candidates = untried;
  }
  return candidates.length === 0 ? undefined : cluster.balancer.pick(candidates, request);
}
