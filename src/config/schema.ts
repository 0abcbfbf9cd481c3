// The mesh config format: one zod schema is the source of validation, of the TypeScript types and of the
// JSON Schema that editors use (`faultline schema`): the mesh's resources (resources.ts) and its faults.
import { z } from 'zod';
import { FaultInjection, FaultSpec } from '../faults/schema.ts';
import { Name } from './primitives.ts';
import { AuthorizationRule, Lint, Mtls, Route, Service, Sidecar, Telemetry } from './resources.ts';

export const MeshConfigSchema = z.strictObject({
  mesh: z.strictObject({ name: Name }),
  mtls: Mtls.prefault({}).meta({ description: 'identities from the control plane\'s CA and mutual TLS between sidecars; the mode takes effect when a sidecar starts' }),
  telemetry: Telemetry.prefault({}),
  services: z.array(Service).default([]),
  routes: z.array(Route).default([]),
  sidecars: z.array(Sidecar).default([]),
  authorization: z.array(AuthorizationRule).default([]).meta({ description: 'who may call whom, enforced at the destination sidecar' }),
  faults: z.array(FaultSpec).default([]).meta({ description: 'static faults, in force while the config is' }),
  faultInjection: FaultInjection.prefault({}),
  lint: Lint.prefault({}).meta({ description: 'faultline lint: findings left alone, each with its reason' }),
});

export type MeshConfig = z.output<typeof MeshConfigSchema>;
export type {
  AuthorizationConfig,
  CircuitBreakerConfig,
  HealthCheckConfig,
  LintConfig,
  LoadBalancerPolicy,
  MtlsConfig,
  OutlierDetectionConfig,
  RetriesConfig,
  RetryOnCondition,
  RouteConfig,
  ServiceConfig,
  SidecarConfig,
  StringMatchConfig,
} from './resources.ts';

export function meshJsonSchema(): unknown {
  return z.toJSONSchema(MeshConfigSchema, { io: 'input', target: 'draft-2020-12' });
}
