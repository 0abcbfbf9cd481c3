// Checks the schema cannot express: names that must be unique, references that must resolve,
// regexes that must compile, subsets that must select an endpoint.
import type { Reference } from '../faults/actions/action.ts';
import { actionReferences } from '../faults/actions/index.ts';
import type { FaultConfig } from '../faults/schema.ts';
import type { MeshConfig } from './schema.ts';

export interface ReferenceProblem {
  path: (string | number)[];
  message: string;
}

export function checkReferences(config: MeshConfig): ReferenceProblem[] {
  const problems: ReferenceProblem[] = [];
  // The first declaration of a name wins, so a duplicate is reported once and does not cascade.
  const services = new Map([...config.services].reverse().map((s) => [s.name, s]));

  duplicates(config.services.map((s) => s.name), (i, name) =>
    problems.push({ path: ['services', i, 'name'], message: `service "${name}" is declared twice` }));
  duplicates(config.routes.map((r) => r.name), (i, name) =>
    problems.push({ path: ['routes', i, 'name'], message: `route "${name}" is declared twice` }));
  duplicates(config.sidecars.map((s) => s.name ?? s.service), (i, name) =>
    problems.push({ path: ['sidecars', i, 'name'], message: `sidecar "${name}" is declared twice (give each a distinct name)` }));

  config.services.forEach((service, s) => {
    const called = new Set<string>();
    (service.calls ?? []).forEach((call, i) => {
      const name = typeof call === 'string' ? call : call.service;
      const at = typeof call === 'string' ? ['services', s, 'calls', i] : ['services', s, 'calls', i, 'service'];
      if (!services.has(name)) problems.push({ path: at, message: `no service named "${name}"` });
      else if (called.has(name)) problems.push({ path: at, message: `"${name}" is listed twice` });
      called.add(name);
    });
    duplicates(service.endpoints.map((e) => e.address), (i, address) =>
      problems.push({ path: ['services', s, 'endpoints', i, 'address'], message: `endpoint ${address} is listed twice` }));
    const lb = service.loadBalancer;
    if (typeof lb === 'object' && lb.hashOn && lb.policy !== 'ring-hash') {
      problems.push({ path: ['services', s, 'loadBalancer', 'hashOn'], message: 'hashOn applies only to the ring-hash policy' });
    }
  });

  config.routes.forEach((route, r) => {
    const at = (...rest: (string | number)[]) => ['routes', r, ...rest];
    const { path, pathPrefix, pathRegex } = route.match;
    if ([path, pathPrefix, pathRegex].filter((p) => p !== undefined).length > 1) {
      problems.push({ path: at('match'), message: 'at most one of path, pathPrefix and pathRegex' });
    }
    if (pathRegex !== undefined) checkRegex(pathRegex, at('match', 'pathRegex'), problems);
    for (const kind of ['headers', 'query'] as const) {
      for (const [name, m] of Object.entries(route.match[kind] ?? {})) {
        if (m.regex !== undefined) checkRegex(m.regex, at('match', kind, name, 'regex'), problems);
      }
    }
    if (route.destinations.every((d) => d.weight === 0)) {
      problems.push({ path: at('destinations'), message: 'the weights add up to 0: at least one destination needs a weight' });
    }
    route.destinations.forEach((d, i) => {
      const service = services.get(d.service);
      if (!service) {
        problems.push({ path: at('destinations', i, 'service'), message: `no service named "${d.service}"` });
      }
      // A subset no endpoint of the file has is no error: instances that register themselves fill it
      // (a canary is "start instances with version=v2"). faultline lint says so (subset-selects-nothing).
    });
  });

  config.sidecars.forEach((sidecar, i) => {
    if (!services.has(sidecar.service)) {
      problems.push({ path: ['sidecars', i, 'service'], message: `no service named "${sidecar.service}"` });
    }
  });
  const listeners = config.sidecars.flatMap((s, i) => [
    ...(['outbound', 'inbound', 'admin'] as const).flatMap((kind) => (s[kind] === undefined ? [] : [{ address: s[kind], path: ['sidecars', i, kind] }])),
    ...s.tcp.map((t, j) => ({ address: t.listen, path: ['sidecars', i, 'tcp', j, 'listen'] })),
  ]);
  duplicates(listeners.map((l) => l.address), (i, address) =>
    problems.push({ path: listeners[i]!.path, message: `listener address ${address} is used twice` }));
  config.lint.ignore.forEach((entry, i) => {
    if (entry.service !== undefined && !services.has(entry.service)) problems.push({ path: ['lint', 'ignore', i, 'service'], message: `no service named "${entry.service}"` });
    if (entry.route !== undefined && !config.routes.some((r) => r.name === entry.route)) problems.push({ path: ['lint', 'ignore', i, 'route'], message: `no route named "${entry.route}"` });
  });
  config.authorization.forEach((rule, i) => {
    if (!services.has(rule.destination)) problems.push({ path: ['authorization', i, 'destination'], message: `no service named "${rule.destination}"` });
    rule.allow.forEach((entry, j) => {
      entry.sources?.forEach((source, k) => {
        if (!services.has(source)) problems.push({ path: ['authorization', i, 'allow', j, 'sources', k], message: `no service named "${source}"` });
      });
      entry.paths?.forEach((m, k) => {
        if (m.regex !== undefined) checkRegex(m.regex, ['authorization', i, 'allow', j, 'paths', k, 'regex'], problems);
      });
    });
  });
  problems.push(...checkFaults(config, services));
  return problems;
}

/** The services a fault names are declared, and its tcp listener exists; paths are within the fault. */
export function checkFault(fault: FaultConfig, services: { has(name: string): boolean }, tcpListeners: { has(name: string): boolean }): ReferenceProblem[] {
  const problems: ReferenceProblem[] = [];
  const named: Reference[] = [
    { path: ['match', 'source'], kind: 'service', names: [fault.match.source ?? []].flat() },
    { path: ['match', 'destination'], kind: 'service', names: [fault.match.destination ?? []].flat() },
    ...actionReferences(fault),
  ];
  for (const { path, kind, names } of named) {
    for (const name of names) {
      if (kind === 'service' && !services.has(name)) problems.push({ path: [...path], message: `no service named "${name}"` });
      if (kind === 'tcpListener' && !tcpListeners.has(name)) problems.push({ path: [...path], message: `no sidecar has a tcp listener named "${name}"` });
    }
  }
  return problems;
}

/** Fault ids unique, the services they name declared, tcp faults on a listener that exists, percents within the blast-radius limit. */
function checkFaults(config: MeshConfig, services: ReadonlyMap<string, unknown>): ReferenceProblem[] {
  const problems: ReferenceProblem[] = [];
  duplicates(config.faults.map((f) => f.id), (i, id) =>
    problems.push({ path: ['faults', i, 'id'], message: `fault "${id}" is declared twice` }));
  const tcpListeners = new Set(config.sidecars.flatMap((s) => s.tcp.map((t) => t.name)));
  config.faults.forEach((fault, i) => {
    problems.push(...checkFault(fault, services, tcpListeners).map((p) => ({ ...p, path: ['faults', i, ...p.path] })));
    if (fault.percent > config.faultInjection.maxPercent) {
      problems.push({ path: ['faults', i, 'percent'], message: `${fault.percent} % is over the limit faultInjection.maxPercent (${config.faultInjection.maxPercent} %)` });
    }
  });
  if (config.faults.length > config.faultInjection.maxActive) {
    problems.push({ path: ['faults'], message: `${config.faults.length} faults, over the limit faultInjection.maxActive (${config.faultInjection.maxActive})` });
  }
  return problems;
}

export function selects(subset: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(subset).every(([key, value]) => labels[key] === value);
}

function duplicates(values: string[], report: (index: number, value: string) => void): void {
  const seen = new Set<string>();
  values.forEach((value, i) => {
    if (seen.has(value)) report(i, value);
    seen.add(value);
  });
}

function checkRegex(source: string, path: (string | number)[], problems: ReferenceProblem[]): void {
  try {
    new RegExp(source);
  } catch (error) {
    problems.push({ path, message: `not a valid regular expression: ${(error as Error).message}` });
  }
}
