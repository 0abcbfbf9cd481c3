// Route match rules compiled once per snapshot into plain predicates; the hot path only calls them.
import type { IncomingHttpHeaders } from 'node:http';
import type { RouteConfig, StringMatchConfig } from './resources.ts';

/** What a route can match on, taken from a request once. */
export interface RouteInput {
  /** Host without port, lowercased. */
  readonly host: string;
  /** The path without its query. */
  readonly pathname: string;
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  readonly query: URLSearchParams;
}

export type RouteMatcher = (input: RouteInput) => boolean;
type StringPredicate = (value: string | undefined) => boolean;

export function compileRouteMatch(match: RouteConfig['match']): RouteMatcher {
  const checks: RouteMatcher[] = [];
  if (match.host !== undefined) checks.push(hostMatcher(match.host));
  const path = pathMatcher(match);
  if (path) checks.push((r) => path(r.pathname));
  if (match.method !== undefined) {
    const methods = new Set(Array.isArray(match.method) ? match.method : [match.method]);
    checks.push((r) => methods.has(r.method));
  }
  for (const [name, rule] of Object.entries(match.headers ?? {})) {
    const key = name.toLowerCase();
    const test = stringMatcher(rule);
    checks.push((r) => test(headerValue(r.headers[key])));
  }
  for (const [name, rule] of Object.entries(match.query ?? {})) {
    const test = stringMatcher(rule);
    checks.push((r) => test(r.query.get(name) ?? undefined));
  }
  return (input) => checks.every((check) => check(input));
}

/** The one path condition of a match (exact, prefix or regex, anchored; a gRPC service and method), if it has one. */
export function pathMatcher(match: {
  path?: string | undefined;
  pathPrefix?: string | undefined;
  pathRegex?: string | undefined;
  grpc?: { service: string; method?: string | undefined } | undefined;
}): ((path: string) => boolean) | undefined {
  if (match.grpc !== undefined) {
    // gRPC's path, /package.Service/Method: one method exactly, or every method of the service.
    const { service, method } = match.grpc;
    return pathMatcher(method === undefined ? { pathPrefix: `/${service}/` } : { path: `/${service}/${method}` });
  }
  if (match.path !== undefined) {
    const exact = match.path;
    return (path) => path === exact;
  }
  if (match.pathPrefix !== undefined) {
    const prefix = match.pathPrefix;
    return (path) => path.startsWith(prefix);
  }
  if (match.pathRegex !== undefined) {
    const regex = new RegExp(`^(?:${match.pathRegex})$`);
    return (path) => regex.test(path);
  }
  return undefined;
}

/** Exact host, or a leading wildcard as in `*.shop.local`; ports are ignored. */
function hostMatcher(pattern: string): RouteMatcher {
  const host = stripPort(pattern.toLowerCase());
  if (host.startsWith('*.')) {
    const suffix = host.slice(1);
    return (r) => r.host.endsWith(suffix);
  }
  return (r) => r.host === host;
}

export function stringMatcher(rule: StringMatchConfig): StringPredicate {
  const test = positive(rule);
  return rule.invert ? (value) => !test(value) : test;
}

function positive(rule: StringMatchConfig): StringPredicate {
  if (rule.present !== undefined) {
    const present = rule.present;
    return (value) => (value !== undefined) === present;
  }
  if (rule.exact !== undefined) {
    const exact = rule.exact;
    return (value) => value === exact;
  }
  if (rule.prefix !== undefined) {
    const prefix = rule.prefix;
    return (value) => value !== undefined && value.startsWith(prefix);
  }
  const regex = new RegExp(`^(?:${rule.regex!})$`);
  return (value) => value !== undefined && regex.test(value);
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value;
}

export function stripPort(authority: string): string {
  if (authority.startsWith('[')) return authority.slice(0, authority.indexOf(']') + 1);
  const colon = authority.lastIndexOf(':');
  return colon === -1 ? authority : authority.slice(0, colon);
}
