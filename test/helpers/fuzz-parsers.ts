// The three parsers of user input, each with valid documents to grow fuzzed ones from, and the
// property every answer must have: a value, or a ConfigError with a position for every problem.
import { readFile } from 'node:fs/promises';
import { DEMO_MESH } from '../../src/cli/paths.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { parseConfig } from '../../src/config/load.ts';
import { compileSnapshot } from '../../src/config/snapshot.ts';
import { parseExperiment } from '../../src/experiments/spec.ts';
import { parseFault } from '../../src/faults/admin.ts';

export const FAULT_SEEDS = [
  'id: slow\nmatch: {source: checkout, destination: payments, headers: {x-user: {exact: jason}}}\nat: attempt\npercent: 50\ncount: {first: 10}\nseed: 42\nttl: 5m\ndelay: {fixed: 300ms}\n',
  'id: errors\nmatch: {destination: payments, pathPrefix: /pay}\npercent: 10\nabort: {status: 503}\nexpiresAt: "2030-01-01T00:00:00Z"\n',
  '{"id": "cut", "match": {"destination": "payments", "method": ["GET", "POST"]}, "abort": {"reset": true}, "ttl": "30s"}',
  'id: held\nmatch: {destination: payments, headers: {x-debug: {regex: "^a+$", invert: true}}}\nhang: {}\ncount: {every: 3}\n',
];

/** A mesh config touching what the demo's does not: policies, authorization, mtls, telemetry, limits. */
const MESH_SEED = `mesh: {name: shop}
mtls: {mode: permissive, trustDomain: shop.local, certTtl: 1h}
telemetry: {enabled: true, history: {requests: 100, keepRequests: always}}
services:
  - name: payments
    endpoints:
      - {address: 127.0.0.1:9101, labels: {version: v1}}
      - {address: 127.0.0.1:9102, labels: {version: v2}}
    loadBalancer: {policy: ring-hash, hashOn: {header: x-user}, virtualNodes: 64}
    healthCheck: {path: /healthz, interval: 1s, timeout: 500ms, expectedStatuses: [200, 204]}
    outlierDetection: {consecutive5xx: 5, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 50}
    circuitBreaker: {maxConnections: 10, failureRatio: {threshold: 0.5, window: 10s}, coolDown: {base: 1s, max: 10s}}
  - name: checkout
    endpoints: [{address: 127.0.0.1:9000}]
routes:
  - name: payments-canary
    match: {host: payments, pathPrefix: /, method: [GET, POST], headers: {x-canary: {exact: "1"}}, query: {debug: {present: true}}}
    destinations:
      - {service: payments, subset: {version: v2}, weight: 10}
      - {service: payments, subset: {version: v1}, weight: 90}
    timeout: 2s
    idleTimeout: 1s
    retries: {attempts: 2, perTryTimeout: 300ms, retryOn: [5xx, reset], backoff: {base: 25ms, max: 250ms}}
sidecars:
  - {service: checkout, outbound: 127.0.0.1:15001, inbound: 127.0.0.1:15006, admin: 127.0.0.1:15000, app: 127.0.0.1:9000, listeners: {maxConnections: 100, headersTimeout: 2s}}
authorization:
  - destination: payments
    allow: [{sources: [checkout], methods: [GET], paths: [{prefix: /pay}]}]
faults:
  - {id: slow, match: {destination: payments}, percent: 5, delay: {fixed: 100ms}}
faultInjection: {maxActive: 10, maxPercent: 50, defaultTtl: 1m}
`;

export type ParserName = 'mesh' | 'fault' | 'experiment';

export interface FuzzedParser {
  readonly seeds: readonly string[];
  readonly parse: (text: string) => unknown;
}

export async function fuzzedParser(name: ParserName): Promise<FuzzedParser> {
  const demo = await readFile(DEMO_MESH, 'utf8');
  if (name === 'mesh') return { seeds: [MESH_SEED, demo], parse: (text) => compileSnapshot(parseConfig(text, 'mesh.yaml'), 'mesh.yaml') };
  if (name === 'fault') {
    const snapshot = compileSnapshot(parseConfig(demo, 'mesh.yaml'), 'mesh.yaml');
    return { seeds: FAULT_SEEDS, parse: (text) => parseFault(text, 'slow', snapshot) };
  }
  const files = ['payments-aborts', 'payments-breaker', 'payments-latency', 'stock-partition'];
  const seeds = await Promise.all(files.map((f) => readFile(new URL(`../../experiments/${f}.yaml`, import.meta.url), 'utf8')));
  return { seeds, parse: (text) => parseExperiment(text, 'experiment.yaml') };
}

/** Parses; a throw must be a ConfigError with file, line, column and message for every problem (else this throws). */
export function answerOf(parse: (text: string) => unknown, text: string): 'valid' | 'invalid' {
  try {
    parse(text);
    return 'valid';
  } catch (error) {
    if (!(error instanceof ConfigError)) throw new Error(`not a ConfigError: ${(error as Error).stack}`);
    const unplaced = error.problems.filter((p) => !(p.file && p.line >= 1 && p.column >= 1 && p.message));
    if (error.problems.length === 0 || unplaced.length > 0) throw new Error(`a problem without a position: ${JSON.stringify(error.problems)}`);
    return 'invalid';
  }
}
