// health-check-slower-than-breaker: health checks take up to unhealthyThreshold × (interval + timeout)
// to take a dead endpoint out (health.ts starts the next check `interval` after the last one ended, and
// a hung endpoint holds each check for its timeout). Two settings act sooner and hand the endpoint back
// to traffic before then:
// - the breaker's cool-down: half-open probes go to any available endpoint, the dead one included, and
//   one failed probe trips the breaker again for twice as long, shedding the whole service (only with a
//   second endpoint for the probes to go to, and no outlier detection to eject the dead one first);
// - the outlier's ejection: the endpoint returns after baseEjectionTime and fails consecutive5xx more
//   tries in each caller's sidecar before it is ejected again.
import { ms } from '../budget.ts';
import type { Finding } from '../findings.ts';
import type { LintModel, LintService } from '../model.ts';
import { finding, type Rule } from './rule.ts';

export const healthCheckSlowerThanBreaker: Rule = {
  id: 'health-check-slower-than-breaker',
  check(model) {
    const found: Finding[] = [];
    for (const service of model.services.values()) {
      const health = service.spec.healthCheck;
      if (!health) continue;
      const detectMs = health.unhealthyThreshold * (health.interval + health.timeout);
      const breaker = service.spec.circuitBreaker;
      const outlier = service.spec.outlierDetection;
      const n = service.spec.endpoints.length;
      if (breaker && !outlier && n >= 2 && detectMs > breaker.coolDown.base) found.push(probesTheDead(model, service, detectMs));
      if (outlier && detectMs > outlier.baseEjectionTime) found.push(restoredTooSoon(model, service, detectMs));
    }
    return found;
  },
};

function detection(service: LintService, detectMs: number) {
  const h = service.spec.healthCheck!;
  return {
    words: `${h.unhealthyThreshold} × (interval ${ms(h.interval)} + timeout ${ms(h.timeout)}) = ${ms(detectMs)}`,
    figures: [
      { name: 'healthCheck.unhealthyThreshold', value: String(h.unhealthyThreshold), origin: 'config' as const },
      { name: 'healthCheck.interval', value: ms(h.interval), origin: 'config' as const },
      { name: 'healthCheck.timeout', value: ms(h.timeout), origin: 'config' as const },
      { name: 'time to mark an endpoint down', value: ms(detectMs), origin: 'derived' as const },
    ],
  };
}

function probesTheDead(model: LintModel, service: LintService, detectMs: number): Finding {
  const cool = service.spec.circuitBreaker!.coolDown;
  const d = detection(service, detectMs);
  return finding(model, 'health-check-slower-than-breaker', {
    service: service.name,
    path: [service.name],
    at: service.where('circuitBreaker', 'coolDown', 'base'),
    message: `health checks take up to ${d.words} to mark a dead endpoint of ${service.name} down, but its breaker half-opens after ${ms(cool.base)}: the probes may go to the dead endpoint`,
    why: `until the checks catch up the dead endpoint is still available, so a half-open probe can land on it and trip the breaker again for ${ms(Math.min(cool.max, cool.base * 2))}, then longer: the whole of ${service.name} is shed for a single dead endpoint`,
    fix: `add outlierDetection to ${service.name} (it ejects the dead endpoint from the traffic itself), make the checks faster (interval, unhealthyThreshold), or raise coolDown.base above ${ms(detectMs)}`,
    figures: [...d.figures, { name: 'circuitBreaker.coolDown.base', value: ms(cool.base), origin: 'config' }],
    observed: false,
  });
}

function restoredTooSoon(model: LintModel, service: LintService, detectMs: number): Finding {
  const o = service.spec.outlierDetection!;
  const d = detection(service, detectMs);
  return finding(model, 'health-check-slower-than-breaker', {
    service: service.name,
    path: [service.name],
    at: service.where('outlierDetection', 'baseEjectionTime'),
    message: `health checks take up to ${d.words} to mark a dead endpoint of ${service.name} down, but an ejection lasts ${ms(o.baseEjectionTime)}: the endpoint is back in the pool before the checks take it out`,
    why: `a returned endpoint that is still dead fails ${o.consecutive5xx} more tries in each caller's sidecar before it is ejected again (for ${ms(Math.min(2 * o.baseEjectionTime, Math.max(o.baseEjectionTime, o.maxEjectionTime)))}); retries may hide them, at the cost of the callers' time`,
    fix: `make the checks faster (interval, unhealthyThreshold, timeout) or raise baseEjectionTime above ${ms(detectMs)}`,
    figures: [...d.figures, { name: 'outlierDetection.baseEjectionTime', value: ms(o.baseEjectionTime), origin: 'config' }],
    observed: false,
  });
}
