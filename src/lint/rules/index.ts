// Every lint rule, in the order their findings are listed within a service and severity.
import { breakerCannotTrip } from './breaker-cannot-trip.ts';
import { ejectionCannotAct } from './ejection-cannot-act.ts';
import { healthCheckSlowerThanBreaker } from './health-check-slower-than-breaker.ts';
import { missingTimeout } from './missing-timeout.ts';
import type { Rule } from './rule.ts';
import { timeoutInversion } from './timeout-inversion.ts';

export const RULE_CHECKS: readonly Rule[] = [timeoutInversion, missingTimeout, breakerCannotTrip, ejectionCannotAct, healthCheckSlowerThanBreaker];
