// Every lint rule, in the order their findings are listed within a service and severity.
import { missingTimeout } from './missing-timeout.ts';
import type { Rule } from './rule.ts';
import { timeoutInversion } from './timeout-inversion.ts';

export const RULE_CHECKS: readonly Rule[] = [timeoutInversion, missingTimeout];
