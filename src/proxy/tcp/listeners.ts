// A sidecar's tcp listeners: one TcpProxy per `tcp:` entry of its config, whose connections get the
// toxics of the tcp faults in force on that listener — each fault decided per connection, like an HTTP
// fault per request (count, percent, seed; the ordinal counts the connections it matched).
import type { EventBus } from '../../telemetry/events.ts';
import type { ActiveFault } from '../../faults/active.ts';
import type { FaultTable } from '../../faults/table.ts';
import { TcpProxy, type TcpToxicRule } from './proxy.ts';
import { toxicOf } from '../../faults/tcp/toxics/index.ts';

export interface TcpListenerSpec {
  readonly name: string;
  readonly listen: string;
  readonly upstream: string;
}

export async function startTcpListeners(specs: readonly TcpListenerSpec[], table: FaultTable, events: EventBus, source: string): Promise<Map<string, TcpProxy>> {
  const proxies = new Map<string, TcpProxy>();
  try {
    for (const spec of specs) {
      const ordinals = new WeakMap<TcpToxicRule, number>();
      const faultOf = new WeakMap<TcpToxicRule, ActiveFault>();
      proxies.set(spec.name, await TcpProxy.start({
        listen: spec.listen,
        upstream: spec.upstream,
        select: () => {
          const rules: TcpToxicRule[] = [];
          for (const fault of table.all()) {
            if (fault.spec.tcp?.listener !== spec.name) continue;
            const decision = fault.decide();
            if (!decision) continue;
            const rule: TcpToxicRule = { id: fault.id, direction: fault.spec.tcp.direction, toxic: toxicOf(fault.spec.tcp) };
            ordinals.set(rule, decision.ordinal);
            faultOf.set(rule, fault);
            rules.push(rule);
          }
          return rules;
        },
        isActive: (id) => {
          const fault = table.get(id);
          return fault !== undefined && !fault.removed.cancelled && !fault.expired;
        },
        onApplied: (rule) => {
          const fault = faultOf.get(rule);
          if (!fault) return;
          events.emit('fault.applied', {
            faultId: rule.id,
            action: 'tcp',
            point: 'tcp',
            ordinal: ordinals.get(rule) ?? 0,
            requestId: null,
            traceId: null,
            attempt: 0,
            source,
            destination: spec.name,
            endpoint: null,
            details: { toxic: rule.toxic.kind, direction: rule.direction },
          });
        },
      }));
    }
  } catch (error) {
    await Promise.all([...proxies.values()].map((p) => p.close()));
    throw error;
  }
  return proxies;
}
