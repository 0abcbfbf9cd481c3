// Every lint rule, in the order their findings are listed within a service and severity.
import { backoffMissing } from './backoff-missing.ts';
import { layeredRetries } from './layered-retries.ts';
import { missingTimeout } from './missing-timeout.ts';
import { retryAmplification } from './retry-amplification.ts';
import { retryNonIdempotent } from './retry-non-idempotent.ts';
import { retryOnOverload } from './retry-on-overload.ts';
import { retryWithoutBudget } from './retry-without-budget.ts';
import type { Rule } from './rule.ts';
import { timeoutInversion } from './timeout-inversion.ts';

export const RULE_CHECKS: readonly Rule[] = [
  timeoutInversion,
  missingTimeout,
  retryAmplification,
  retryWithoutBudget,
  retryNonIdempotent,
  retryOnOverload,
  layeredRetries,
  backoffMissing,
];
