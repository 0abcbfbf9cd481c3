// The request path, in one place. Reading this file tells the whole order of layers; a new policy is
// a new module and one line here. Stacks are composed once per snapshot.
import type { Snapshot } from '../config/snapshot.ts';
import type { Dispatcher } from 'undici';
import { authorize } from './authz.ts';
import { balance } from './balance.ts';
import { breaker } from './breaker.ts';
import type { Breakers } from './breaker/registry.ts';
import { EndpointState } from '../http/endpoint-state.ts';
import type { Clusters } from './endpoints.ts';
import { forward } from './forward.ts';
import type { Http2Sessions } from './h2-sessions.ts';
import { toLocalApp } from './local-app.ts';
import { outlier, type OutlierDetector } from './outlier.ts';
import { route } from './router.ts';
import { retry } from './retry.ts';
import type { RetryBudgets } from './retry-budget.ts';
import { perTryTimeout, timeout } from './timeout.ts';
import type { EventBus } from '../telemetry/events.ts';
import type { Slot } from '../faults/active.ts';
import { faultLayer, type Instances } from '../faults/layer.ts';
import type { FaultTable } from '../faults/table.ts';
import type { MeshTracer } from '../telemetry/tracing.ts';
import { traceAttempt } from './trace-attempt.ts';
import { compose, type Handler } from '../http/types.ts';

/** Everything a request needs from one snapshot: swapped atomically on reload. */
export interface Generation {
  readonly snapshot: Snapshot;
  readonly clusters: Clusters;
  readonly outbound: Handler;
  /** None for a client-only sidecar, which has no inbound listener. */
  readonly inbound: Handler | undefined;
}

export interface StackParts {
  /** The connection pools for calls to a service (one per service under mTLS: each checks its own server identity). */
  readonly dispatcher: (service: string | undefined) => Dispatcher;
  /** The HTTP/2 sessions to upstreams (apps that speak HTTP/2, peer sidecars for HTTP/2 callers). */
  readonly http2: Http2Sessions;
  readonly outlierDetector: OutlierDetector;
  readonly retryBudgets: RetryBudgets;
  readonly breakers: Breakers;
  readonly events: EventBus;
  readonly tracer: MeshTracer | undefined;
  readonly faults: FaultTable;
}

export function composeGeneration(snapshot: Snapshot, clusters: Clusters, sidecar: string, parts: StackParts): Generation {
  const spec = snapshot.sidecars.find((s) => s.name === sidecar)!;
  const triggers = snapshot.config.faultInjection.headerTriggers;
  const instances: Instances = {
    of: (service) => snapshot.services.get(service)?.endpoints,
    self: snapshot.services.get(spec.service)?.endpoints.find((e) => e.sidecar === spec.name),
  };
  // What the app at the end of each hop speaks: the destination's outbound, the sidecar's own inbound.
  const appProtocol = snapshot.services.get(spec.service)?.protocol ?? 'http1';
  const fault = (slot: Slot) => faultLayer(slot, parts.faults, parts.events, spec.service, triggers, instances);
  return Object.freeze({
    snapshot,
    clusters,
    // accept ─ route ─ timeout ─ fault(request) ─ retry ─┬─ attempt: [attempt span] ─ per-try timeout ─ breaker ─ fault(attempt) ─ balance ─ outlier ─ fault(endpoint) ─ forward
    //                                                  └─ (each retry is a new attempt)
    // fault(endpoint): attempt faults on chosen endpoints, once balancing chose one; inside balance and
    // outlier, which see it as they would a sick instance (the load figures, the outlier detector).
    outbound: compose(
      [
        route,
        timeout,
        fault('request'),
        retry(parts.retryBudgets, parts.breakers, clusters, parts.events),
        ...(parts.tracer ? [traceAttempt(parts.tracer)] : []),
        perTryTimeout,
        breaker(parts.breakers, clusters),
        fault('attempt'),
        balance(clusters),
        outlier(parts.outlierDetector, clusters),
        fault('endpoint'),
      ],
      forward(parts.dispatcher, parts.http2, (ctx) => clusters.get(ctx.destination!.service)!.spec.protocol),
    ),
    // accept ─ authz ─ fault(inbound) ─ local app ─ forward
    inbound: spec.app === undefined
      ? undefined
      : compose([authorize(snapshot.config.authorization, spec.service, parts.events), fault('inbound'), toLocalApp(localApp(spec.service, spec.app))], forward(parts.dispatcher, parts.http2, () => appProtocol)),
  });
}

function localApp(service: string, address: string): EndpointState {
  return new EndpointState({ service, address, labels: {}, dial: address, sidecar: undefined });
}
