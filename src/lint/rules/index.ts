// Every lint rule, in the order their findings are listed within a service and severity.
import { appTimeoutBelowMesh } from './app-timeout-below-mesh.ts';
import { attemptsExceedBudget } from './attempts-exceed-budget.ts';
import { backoffMissing } from './backoff-missing.ts';
import { breakerCannotTrip } from './breaker-cannot-trip.ts';
import { ejectionCannotAct } from './ejection-cannot-act.ts';
import { healthCheckSlowerThanBreaker } from './health-check-slower-than-breaker.ts';
import { layeredRetries } from './layered-retries.ts';
import { missingTimeout } from './missing-timeout.ts';
import { perTryGeRouteTimeout } from './per-try-ge-route-timeout.ts';
import { retryAmplification } from './retry-amplification.ts';
import { retryNonIdempotent } from './retry-non-idempotent.ts';
import { retryOnOverload } from './retry-on-overload.ts';
import { retryWithoutBudget } from './retry-without-budget.ts';
import type { Rule } from './rule.ts';
import { subsetSelectsNothing } from './subset-selects-nothing.ts';
import { timeoutBelowLatency } from './timeout-below-latency.ts';
import { timeoutInversion } from './timeout-inversion.ts';
import { timeoutRetryWithoutPerTry } from './timeout-retry-without-per-try.ts';

export const RULE_CHECKS: readonly Rule[] = [
  timeoutInversion,
  missingTimeout,
  appTimeoutBelowMesh,
  perTryGeRouteTimeout,
  timeoutRetryWithoutPerTry,
  attemptsExceedBudget,
  timeoutBelowLatency,
  retryAmplification,
  retryWithoutBudget,
  retryNonIdempotent,
  retryOnOverload,
  layeredRetries,
  backoffMissing,
  breakerCannotTrip,
  ejectionCannotAct,
  healthCheckSlowerThanBreaker,
  subsetSelectsNothing,
];
