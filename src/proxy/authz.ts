// Authorization at the destination's sidecar: a service with `authorization:` rules accepts only the
// calls one of its allow entries matches in full (source identity, method, path); anything else is a
// 403 with flag RBAC and an `authz.denied` event. A service without rules accepts every caller. The
// caller's identity is its certificate's SPIFFE ID under mTLS; without mTLS it is the
// x-faultline-source header its sidecar sets, which only proves anything inside a trusted network.
// Rules are compiled per snapshot, so a change applies with the next one, without a restart.
import { stringMatcher } from '../config/matchers.ts';
import type { AuthorizationConfig } from '../config/schema.ts';
import { ErrorCode, MeshError, ResponseFlag } from '../errors.ts';
import type { EventBus } from '../telemetry/events.ts';
import type { Layer, RequestContext } from '../http/types.ts';

type Check = (ctx: RequestContext) => boolean;

/** The allow entries for `service`, compiled; undefined when it has no rules (everyone may call). */
export function compileAuthorization(rules: readonly AuthorizationConfig[], service: string): Check | undefined {
  const mine = rules.filter((r) => r.destination === service);
  if (mine.length === 0) return undefined;
  const entries = mine.flatMap((r) => r.allow).map((entry): Check => {
    const sources = entry.sources && new Set(entry.sources);
    const methods = entry.methods && new Set(entry.methods);
    const paths = entry.paths?.map(stringMatcher);
    return (ctx) => (!sources || sources.has(ctx.source)) && (!methods || methods.has(ctx.method)) && (!paths || paths.some((m) => m(ctx.pathname)));
  });
  return (ctx) => entries.some((allows) => allows(ctx));
}

export function authorize(rules: readonly AuthorizationConfig[], service: string, events: EventBus): Layer {
  const allowed = compileAuthorization(rules, service);
  return (next) => (ctx) => {
    if (!allowed || allowed(ctx)) return next(ctx);
    const reason = `${ctx.source} may not ${ctx.method} ${ctx.pathname} on ${service}`;
    events.emit('authz.denied', { requestId: ctx.id, traceId: ctx.traceId, source: ctx.source, destination: service, method: ctx.method, path: ctx.pathname, reason });
    return Promise.reject(new MeshError(ErrorCode.Forbidden, 403, ResponseFlag.Unauthorized, `authorization denied: ${reason}`));
  };
}
