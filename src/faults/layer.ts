// The fault layer, at one injection point of the request path: the faults acting there are matched
// against the request, each match is decided (count, percentage: reproducibly), and the faults that
// fire wrap the rest of the stack, in order. Every injection is recorded on the request (for
// request.done and the response header) and emitted as fault.applied, with the instance it hit when
// that is known (after balancing, or inbound). With no fault at this point — the usual case — the
// layer costs one array length check.
import type { Handler, Layer, RequestContext } from '../http/types.ts';
import type { EventBus } from '../telemetry/events.ts';
import { ActiveFault, type FaultInput, type Slot } from './active.ts';
import type { Plan } from './actions/index.ts';
import type { SelectableEndpoint } from './endpoints.ts';
import type { FaultTable } from './table.ts';
import type { FaultConfig } from './schema.ts';

/** Test-only request headers that inject a fault, when the mesh config enables them. */
export const TriggerHeader = {
  delayMs: 'x-faultline-fault-delay-ms',
  abort: 'x-faultline-fault-abort',
} as const;

/** The instances a fault layer sees: what endpoint selectors choose among, and this sidecar's own. */
export interface Instances {
  /** A service's endpoints as the snapshot in force lists them. */
  readonly of: (service: string) => readonly SelectableEndpoint[] | undefined;
  /** Inbound: this sidecar's own instance among its service's endpoints; undefined when it is none. */
  readonly self: SelectableEndpoint | undefined;
}

/**
 * The fault layer at one slot: `request`, `attempt` (before balancing), `endpoint` (an attempt after
 * balancing: faults on chosen endpoints) or `inbound`.
 */
export function faultLayer(slot: Slot, table: FaultTable, events: EventBus, service: string, triggers: boolean, instances: Instances): Layer {
  const point = slot === 'endpoint' ? 'attempt' : slot;
  return (next) => (ctx) => {
    const destination = point === 'inbound' ? service : (ctx.destination?.service ?? '');
    const faults = table.for(slot, destination);
    const triggered = triggers && point !== 'attempt' ? triggerFaults(ctx) : undefined;
    if (faults.length === 0 && !triggered) return next(ctx);
    const endpoint = slot === 'inbound' ? instances.self : slot === 'endpoint' ? ctx.endpoint?.spec : undefined;
    const input: FaultInput = {
      source: ctx.source,
      destination,
      route: point === 'inbound' ? undefined : ctx.route?.name,
      method: ctx.method,
      path: ctx.pathname,
      headers: ctx.headers,
      endpoint,
      peers: endpoint === undefined ? undefined : instances.of(destination),
    };
    let handler: Handler = next;
    // Most requests match none of the faults installed: nothing is allocated for them but the input.
    let fired: Fired[] | undefined;
    for (const fault of faults) fired = consider(fault, input, fired);
    if (triggered) for (const fault of triggered) fired = consider(fault, input, fired);
    if (fired === undefined) return next(ctx);
    // The first fault listed is outermost: a delay listed before an abort delays the abort, and an
    // abort stops the faults after it (they are not recorded: they never acted).
    for (let i = fired.length - 1; i >= 0; i--) {
      const { fault, plan, ordinal } = fired[i]!;
      const inner = handler;
      handler = (c) => {
        (c.faults ??= []).push(fault.id);
        events.emit('fault.applied', {
          faultId: fault.id,
          action: fault.actionName,
          point,
          ordinal,
          requestId: c.id,
          traceId: c.traceId,
          attempt: point === 'attempt' ? c.attempt : 0,
          source: input.source,
          destination: input.destination,
          endpoint: endpoint?.address ?? null,
          details: plan,
        });
        c.span?.addEvent('fault.applied', { 'faultline.fault_id': fault.id, 'faultline.fault_action': fault.actionName });
        return fault.action!.run(c, inner, { fault, point, plan });
      };
    }
    return handler(ctx);
  };
}

interface Fired {
  readonly fault: ActiveFault;
  readonly plan: Plan;
  readonly ordinal: number;
}

/** Adds the fault to those that fire on this request when it matches and its draw says so. */
function consider(fault: ActiveFault, input: FaultInput, fired: Fired[] | undefined): Fired[] | undefined {
  if (!fault.action || !fault.matches(input)) return fired;
  const decision = fault.decide();
  if (!decision) return fired;
  (fired ??= []).push({ fault, plan: fault.action.plan(decision.random), ordinal: decision.ordinal });
  return fired;
}

/**
 * Faults asked for by the request's own headers (tests only), made on the spot; the headers are
 * removed so that the next hop does not inject them again.
 */
function triggerFaults(ctx: RequestContext): ActiveFault[] | undefined {
  const delay = ctx.headers[TriggerHeader.delayMs];
  const abort = ctx.headers[TriggerHeader.abort];
  if (delay === undefined && abort === undefined) return undefined;
  delete ctx.headers[TriggerHeader.delayMs];
  delete ctx.headers[TriggerHeader.abort];
  const specs: FaultConfig[] = [];
  const base = { match: {}, at: 'request', percent: 100, seed: 0 } as const;
  const ms = Number(delay);
  if (delay !== undefined && Number.isFinite(ms) && ms >= 0) specs.push({ ...base, id: 'header-delay', delay: { fixed: ms, before: 'request' } });
  const status = Number(abort);
  if (abort === 'reset') specs.push({ ...base, id: 'header-abort', abort: { reset: true } });
  else if (Number.isInteger(status) && status >= 200 && status <= 599) specs.push({ ...base, id: 'header-abort', abort: { status } });
  return specs.map((spec) => new ActiveFault(spec, 'runtime', undefined));
}


