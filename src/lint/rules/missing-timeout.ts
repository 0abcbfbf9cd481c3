// missing-timeout: a hop nothing bounds — no route timeout, no per-try timeout, no app timeout. In a
// chain (the callee calls others, or the caller is itself called) it is an error: one slow service
// holds every caller above it for as long as it likes. At a lone leaf, a warning.
import { loadRate, waitBound } from '../budget.ts';
import type { Finding } from '../findings.ts';
import { callees, callers } from '../model.ts';
import { finding, type Rule } from './rule.ts';

export const missingTimeout: Rule = {
  id: 'missing-timeout',
  check(model) {
    const found: Finding[] = [];
    for (const edge of model.edges) {
      if (waitBound(edge)) continue;
      const below = callees(model, edge.to).map((e) => e.to);
      const above = callers(model, edge.from).map((e) => e.from);
      const chain = below.length > 0 || above.length > 0;
      const route = edge.routes.find((r) => r.timeoutMs === undefined && r.retries?.perTryTimeoutMs === undefined) ?? edge.routes[0];
      const path = [...(above.length > 0 ? [above[0]!] : []), edge.from, edge.to, ...(below.length > 0 ? [below[0]!] : [])];
      const app = edge.app ? `${edge.from}'s app declares no timeout on it` : `${edge.from}'s app's timeout is not declared (services[].calls)`;
      found.push(finding(model, 'missing-timeout', {
        severity: chain ? 'error' : 'warning',
        service: edge.from,
        path,
        route: route?.name,
        at: route === undefined || route.implicit ? (edge.app?.at ?? model.services.get(edge.from)!.at) : route.at,
        message: `nothing bounds ${edge.from}'s calls to ${edge.to}: ${route === undefined ? 'no route' : route.implicit ? 'no route names it (the implicit one has no timeout)' : `route ${route.name} has no timeout`}, and ${app}`,
        why: chain
          ? `when ${edge.to} hangs (a partition, a deadlock), ${edge.from} waits for as long as ${above.length > 0 ? `its caller ${above[0]} lets it` : 'the connection lives'}: every request in flight piles up${above.length > 0 ? ` and ${above[0]}'s own budget is spent here` : ''}`
          : `when ${edge.to} hangs, ${edge.from} waits for as long as the connection lives (undici's default is 300 s)`,
        fix: `set a timeout on ${route && !route.implicit ? `route ${route.name}` : `a route for host ${edge.to}`} (or per-try timeouts with retries), below what ${edge.from}'s callers allow it`,
        figures: [{ name: `${edge.from} → ${edge.to} timeout`, value: 'none', origin: route && !route.implicit ? 'config' : 'default' }],
        predicts: {
          fault: { partition: { from: [edge.from], to: [edge.to], direction: 'both', mode: 'blackhole' } },
          durationMs: 8_000,
          entry: above[0] ?? edge.from,
          rate: loadRate(model, above[0] ?? edge.from),
          steadyState: [{ availability: { service: edge.from === (above[0] ?? edge.from) ? edge.to : edge.from, min: 99 } }],
          expect: [],
          outcome: `with ${edge.to} unreachable from ${edge.from}, ${edge.from}'s calls hang until something above gives up${above.length > 0 ? ` (${above[0]}'s wait)` : ''}`,
          // Nothing bounds the hop, so no timeout acts there: its calls fail however the hang ends — the caller
          // leaving, the health checks marking the callee down (its checks are cut too), the fault's end.
          signature: { hop: `${edge.from} → ${edge.to}`, acted: ['none', 'fault', 'caller-left', 'no-healthy-upstream', 'reset', 'connect-failure'] },
        },
      }));
    }
    return found;
  },
};
