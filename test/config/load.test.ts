// Config loading: the example is valid, and every kind of bad input is refused with file,
// line, field and what was expected, all problems at once.
import { expect } from 'chai';
import { parseConfig } from '../../src/config/load.ts';
import { ConfigError, type ConfigProblem } from '../../src/config/errors.ts';
import { meshJsonSchema } from '../../src/config/schema.ts';
import { compileSnapshot } from '../../src/config/snapshot.ts';

export const EXAMPLE = `mesh: {name: shop}
services:
  - name: payments
    endpoints:
      - {address: 127.0.0.1:9101, labels: {version: v1}}
      - {address: 127.0.0.1:9102, labels: {version: v2}}
    loadBalancer: least-request        # round-robin | least-request | random | ring-hash | ewma
    healthCheck: {path: /healthz, interval: 1s, timeout: 500ms, unhealthyThreshold: 3, healthyThreshold: 2}
    outlierDetection: {consecutive5xx: 5, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 50}
  - name: checkout
    endpoints:
      - {address: 127.0.0.1:9000}
routes:
  - name: payments-canary
    match: {host: payments, pathPrefix: /, headers: {x-canary: {exact: "1"}}}
    destinations:
      - {service: payments, subset: {version: v2}, weight: 10}
      - {service: payments, subset: {version: v1}, weight: 90}
    timeout: 2s
sidecars:
  - service: checkout
    outbound: 127.0.0.1:15001
    inbound: 127.0.0.1:15006
    admin: 127.0.0.1:15000
    app: 127.0.0.1:9000
`;

function problems(text: string): ConfigProblem[] {
  try {
    parseConfig(text, 'mesh.yaml');
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return [...(error as ConfigError).problems];
  }
  expect.fail('the config was accepted');
}

function only(text: string): ConfigProblem {
  const found = problems(text);
  expect(found, JSON.stringify(found)).to.have.length(1);
  return found[0]!;
}

describe('config loading', () => {
  it('accepts the example from the issue, with durations in milliseconds', () => {
    const config = parseConfig(EXAMPLE, 'mesh.yaml');
    expect(config.services[0]!.healthCheck).to.deep.equal({
      path: '/healthz', interval: 1000, timeout: 500, unhealthyThreshold: 3, healthyThreshold: 2,
    });
    expect(config.services[0]!.outlierDetection!.baseEjectionTime).to.equal(30_000);
    expect(config.routes[0]!.timeout).to.equal(2000);
  });

  it('fills defaults: round-robin, no panic threshold, weight 1', () => {
    const config = parseConfig('mesh: {name: m}\nservices:\n  - name: a\n    endpoints: [{address: "127.0.0.1:1"}]\nroutes:\n  - {name: r, destinations: [{service: a}]}\n');
    expect(config.services[0]!.loadBalancer).to.equal('round-robin');
    expect(config.services[0]!.healthyPanicThreshold).to.equal(0);
    expect(config.routes[0]!.destinations[0]!.weight).to.equal(1);
  });

  it('reports a YAML syntax error with its line', () => {
    const problem = only('mesh: {name: shop\nservices: []\n');
    expect(problem.message).to.match(/^YAML: /);
    expect(problem.line).to.be.greaterThan(0);
  });

  it('reports duplicate keys', () => {
    expect(only('mesh: {name: a}\nmesh: {name: b}\n').message).to.match(/unique/i);
  });

  it('names the line, column and field of a wrong value', () => {
    const problem = only(EXAMPLE.replace('interval: 1s, timeout', 'interval: 1 sec, timeout'));
    expect(problem).to.include({ file: 'mesh.yaml', line: 8, field: 'services[0].healthCheck.interval' });
    expect(problem.column).to.equal(45);
    expect(problem.message).to.include('duration');
  });

  it('refuses unknown fields, pointing at the key', () => {
    const problem = only(EXAMPLE.replace('    loadBalancer: least-request', '    loadBalancr: least-request'));
    expect(problem).to.include({ line: 7, column: 5, field: 'services[0].loadBalancr' });
    expect(problem.message).to.equal('unknown field "loadBalancr"');
  });

  it('says a required field is missing, at its parent', () => {
    const problem = only(EXAMPLE.replace('    admin: 127.0.0.1:15000\n', ''));
    expect(problem).to.include({ field: 'sidecars[0].admin', line: 21, column: 5 });
    expect(problem.message).to.match(/^missing: expected an address/);
  });

  it('lists the choices of an enum or union', () => {
    const problem = only(EXAMPLE.replace('loadBalancer: least-request', 'loadBalancer: fastest'));
    expect(problem.field).to.equal('services[0].loadBalancer');
    expect(problem.message).to.include('"ring-hash"').and.include('or an object');
  });

  it('takes a service\'s protocol (http1 by default, http2, grpc) and names the field and choices of another', () => {
    expect(parseConfig(EXAMPLE, 'mesh.yaml').services.map((s) => s.protocol)).to.deep.equal(['http1', 'http1']);
    const grpc = parseConfig(EXAMPLE.replace('    loadBalancer: least-request', '    protocol: grpc\n    loadBalancer: least-request'), 'mesh.yaml');
    expect(compileSnapshot(grpc, 'mesh.yaml').services.get('payments')!.protocol).to.equal('grpc');
    const problem = only(EXAMPLE.replace('    loadBalancer: least-request', '    protocol: http3\n    loadBalancer: least-request'));
    expect(problem).to.include({ field: 'services[0].protocol', line: 7, column: 15 });
    expect(problem.message).to.include('"http1"').and.include('"http2"').and.include('"grpc"');
  });

  it('matches gRPC calls by service and method, compiled to the path, and names the field of a bad one', () => {
    const text = EXAMPLE.replace('match: {host: payments, pathPrefix: /, headers: {x-canary: {exact: "1"}}}', 'match: {host: payments, grpc: {service: shop.Payments, method: Charge}}');
    const snapshot = compileSnapshot(parseConfig(text, 'mesh.yaml'), 'mesh.yaml');
    const route = snapshot.routes.find((r) => r.name === 'payments-canary')!;
    const input = (pathname: string) => ({ host: 'payments', pathname, method: 'POST', headers: {}, query: new URLSearchParams() });
    expect(route.matches(input('/shop.Payments/Charge'))).to.equal(true);
    expect(route.matches(input('/shop.Payments/Refund'))).to.equal(false);
    expect(route.matches(input('/shop.PaymentsV2/Charge'))).to.equal(false);
    const service = compileSnapshot(parseConfig(text.replace(', method: Charge', ''), 'mesh.yaml'), 'mesh.yaml').routes.find((r) => r.name === 'payments-canary')!;
    expect(service.matches(input('/shop.Payments/Refund'))).to.equal(true);
    expect(service.matches(input('/shop.Ledger/Charge'))).to.equal(false);

    const both = only(text.replace('grpc: {', 'pathPrefix: /, grpc: {'));
    expect(both).to.include({ field: 'routes[0].match.grpc', line: 15 });
    expect(both.message).to.include('drop pathPrefix');
    expect(only(text.replace('method: Charge', 'method: Charge/x'))).to.include({ field: 'routes[0].match.grpc.method', line: 15 });
    expect(only(text.replace('service: shop.Payments', 'service: /shop.Payments'))).to.include({ field: 'routes[0].match.grpc.service', line: 15 });
  });

  it('takes the gRPC retryOn tokens beside the HTTP ones', () => {
    const text = EXAMPLE.replace('    timeout: 2s\n', '    timeout: 2s\n    retries: {retryOn: [unavailable, cancelled, deadline-exceeded, internal, resource-exhausted, connect-failure]}\n');
    expect(parseConfig(text, 'mesh.yaml').routes[0]!.retries!.retryOn).to.include('unavailable').and.include('resource-exhausted');
    const problem = only(text.replace('[unavailable,', '[unavailabel,'));
    expect(problem.field).to.equal('routes[0].retries.retryOn[0]');
    expect(problem.message).to.include('"unavailable"');
  });

  it('checks addresses and ports', () => {
    expect(only(EXAMPLE.replace('127.0.0.1:9102', '127.0.0.1:99999')).message).to.include('port between 1 and 65535');
    expect(only(EXAMPLE.replace('127.0.0.1:9102', 'localhost')).message).to.include('host:port');
  });

  it('checks names, methods, and numbers', () => {
    expect(only(EXAMPLE.replace('name: payments\n', 'name: Payments_1\n')).field).to.equal('services[0].name');
    expect(only(EXAMPLE.replace('pathPrefix: /,', 'method: get,')).field).to.equal('routes[0].match.method');
    expect(only(EXAMPLE.replace('weight: 10}', 'weight: -1}')).field).to.equal('routes[0].destinations[0].weight');
    expect(only(EXAMPLE.replace('unhealthyThreshold: 3', 'unhealthyThreshold: 0')).field).to.equal('services[0].healthCheck.unhealthyThreshold');
  });

  it('needs exactly one condition in a string match', () => {
    const problem = only(EXAMPLE.replace('{exact: "1"}', '{exact: "1", prefix: "2"}'));
    expect(problem.field).to.equal('routes[0].match.headers.x-canary');
    expect(problem.message).to.include('exactly one of');
  });

  it('resolves references: services, subsets, sidecars', () => {
    expect(only(EXAMPLE.replace('{service: payments, subset: {version: v2}', '{service: paymnts, subset: {version: v2}')))
      .to.include({ field: 'routes[0].destinations[0].service', line: 17, message: 'no service named "paymnts"' });
    // A subset no endpoint of the file has is left to instances that register (lint warns: subset-selects-nothing).
    expect(parseConfig(EXAMPLE.replace('subset: {version: v2}', 'subset: {version: v3}')).routes[0]!.destinations[0]!.subset).to.deep.equal({ version: 'v3' });
    expect(only(EXAMPLE.replace('  - service: checkout', '  - service: cart')).field).to.equal('sidecars[0].service');
  });

  it('client-only: refuses a sidecar with an inbound listener but no app, or a command with no app to start, naming the field', () => {
    const base = 'mesh: {name: m}\nservices:\n  - name: job\nsidecars:\n  - service: job\n    outbound: 127.0.0.1:15001\n    admin: 127.0.0.1:15000\n';
    expect(() => parseConfig(base, 'mesh.yaml')).not.to.throw();
    const halfServing = problems(`${base}    inbound: 127.0.0.1:15006\n`);
    expect(halfServing.map((p) => [p.line, p.field])).to.deep.equal([[5, 'sidecars[0].app']]);
    expect(halfServing[0]!.message).to.match(/both inbound and app; a client-only one has neither/);
    const command = problems(`${base}    command: [node, job.js]\n`);
    expect(command.map((p) => [p.line, p.field])).to.deep.equal([[8, 'sidecars[0].command']]);
    expect(command[0]!.message).to.match(/give it app/);
  });

  it('refuses an admin listener off loopback, naming the field; loopback in any spelling is fine', () => {
    const withAdmin = (admin: string) => `mesh: {name: m}\nservices:\n  - name: job\nsidecars:\n  - service: job\n    outbound: 0.0.0.0:15001\n    admin: "${admin}"\n`;
    for (const admin of ['127.0.0.1:15000', '127.0.0.2:15000', '[::1]:15000', 'localhost:15000']) {
      expect(() => parseConfig(withAdmin(admin), 'mesh.yaml'), admin).not.to.throw();
    }
    for (const admin of ['0.0.0.0:15000', '10.0.0.5:15000', '[::]:15000', 'sidecar.internal:15000']) {
      const problem = only(withAdmin(admin));
      expect([problem.line, problem.column, problem.field], admin).to.deep.equal([7, 12, 'sidecars[0].admin']);
      expect(problem.message).to.match(/without a credential: bind it to loopback/);
    }
  });

  it('client-only: does not require a route\'s subset to select an endpoint of a service that has none yet', () => {
    const text = 'mesh: {name: m}\nservices:\n  - name: api\nroutes:\n  - {name: canary, destinations: [{service: api, subset: {version: v2}}]}\n';
    expect(() => parseConfig(text, 'mesh.yaml')).not.to.throw();
  });

  it('refuses duplicates: services, routes, endpoints, listener addresses', () => {
    expect(only(EXAMPLE.replace('routes:', '  - {name: payments, endpoints: [{address: "127.0.0.1:9200"}]}\nroutes:')))
      .to.include({ line: 13, field: 'services[2].name', message: 'service "payments" is declared twice' });
    expect(only(EXAMPLE.replace('127.0.0.1:9102', '127.0.0.1:9101')).message).to.equal('endpoint 127.0.0.1:9101 is listed twice');
    expect(only(EXAMPLE.replace('inbound: 127.0.0.1:15006', 'inbound: 127.0.0.1:15001')))
      .to.include({ field: 'sidecars[0].inbound', message: 'listener address 127.0.0.1:15001 is used twice' });
    const twoRoutes = EXAMPLE.replace('sidecars:', '  - {name: payments-canary, destinations: [{service: payments}]}\nsidecars:');
    expect(only(twoRoutes).message).to.equal('route "payments-canary" is declared twice');
  });

  it('refuses invalid regexes, several path matchers, zero total weight, misplaced hashOn', () => {
    expect(only(EXAMPLE.replace('pathPrefix: /,', 'pathRegex: "/(a",')).message).to.match(/^not a valid regular expression/);
    expect(only(EXAMPLE.replace('pathPrefix: /,', 'pathPrefix: /, path: /x,')).message).to.equal('at most one of path, pathPrefix and pathRegex');
    expect(only(EXAMPLE.replace('weight: 10}', 'weight: 0}').replace('weight: 90}', 'weight: 0}')).field).to.equal('routes[0].destinations');
    expect(only(EXAMPLE.replace('loadBalancer: least-request', 'loadBalancer: {policy: random, hashOn: {header: x-user}}')).field)
      .to.equal('services[0].loadBalancer.hashOn');
  });

  it('reports every problem of a file at once, in file order', () => {
    const found = problems(EXAMPLE.replace('interval: 1s, timeout', 'interval: soon, timeout').replace('weight: 90', 'weight: heavy').replace('admin: 127.0.0.1:15000', 'admin: nowhere'));
    expect(found.map((p) => p.field)).to.deep.equal(['services[0].healthCheck.interval', 'routes[0].destinations[1].weight', 'sidecars[0].admin']);
    expect(found.map((p) => p.line)).to.deep.equal([8, 18, 24]);
  });

  it('formats problems as file:line:column field: message', () => {
    try {
      parseConfig(EXAMPLE.replace('weight: 90', 'weight: heavy'), 'shop.yaml');
      expect.fail('accepted');
    } catch (error) {
      expect((error as Error).message).to.match(/^FL_CONFIG_INVALID: 1 problem\n {2}shop\.yaml:18:\d+ routes\[0\]\.destinations\[1\]\.weight: expected number/);
    }
  });

  it('treats an empty file as missing the mesh section', () => {
    expect(only('').field).to.equal('mesh');
  });
});

describe('faults in the config', () => {
  const withFaults = (faults: string, settings = '') => `${EXAMPLE}${settings}faults:\n${faults}`;

  it('accepts the issue\'s example faults, with defaults filled', () => {
    const config = parseConfig(withFaults(`  - id: payments-slow
    match: {source: checkout, destination: payments, headers: {x-user: {exact: jason}}}
    at: attempt
    percent: 50
    seed: 42
    delay: {fixed: 300ms}
  - id: payments-errors
    match: {destination: payments}
    abort: {status: 503}
    percent: 10
  - id: split
    partition: {from: [checkout], to: [payments], direction: both, mode: blackhole}
`));
    expect(config.faults.map((f) => [f.id, f.at, f.percent, f.seed])).to.deep.equal([
      ['payments-slow', 'attempt', 50, 42],
      ['payments-errors', 'request', 10, 0],
      ['split', 'request', 100, 0],
    ]);
    expect(config.faults[0]!.delay).to.deep.equal({ fixed: 300, before: 'request' });
    expect(config.faultInjection).to.include({ maxActive: 50, maxPercent: 100, defaultTtl: 300_000, headerTriggers: false });
  });

  it('names the line and field of a bad fault, and checks references and limits', () => {
    const base = EXAMPLE.split('\n').length;
    expect(only(withFaults('  - id: a\n    abort: {status: 503}\n    delay: {fixed: 1s}\n'))).to.include({ line: base + 1, field: 'faults[0]', message: 'one action, not delay and abort' });
    expect(only(withFaults('  - id: a\n    delay: {uniform: {min: 2s, max: 1s}}\n'))).to.include({ line: base + 2, field: 'faults[0].delay.uniform', message: 'min must not exceed max' });
    expect(only(withFaults('  - id: a\n    match: {destination: paymnts}\n    hang: {}\n'))).to.include({ line: base + 2, field: 'faults[0].match.destination', message: 'no service named "paymnts"' });
    expect(only(withFaults('  - id: a\n    hang: {}\n  - id: a\n    hang: {}\n')).field).to.equal('faults[1].id');
    expect(only(withFaults('  - id: a\n    tcp: {listener: db, latency: {latency: 1s}}\n')).message).to.equal('no sidecar has a tcp listener named "db"');
    expect(only(withFaults('  - id: a\n    hang: {}\n    percent: 60\n', 'faultInjection: {maxPercent: 50}\n'))).to.include({
      field: 'faults[0].percent',
      message: '60 % is over the limit faultInjection.maxPercent (50 %)',
    });
  });
});

describe('snapshot compilation', () => {
  it('versions by content: same config, same version; any change, a new one', () => {
    const a = compileSnapshot(parseConfig(EXAMPLE), 'a.yaml');
    const b = compileSnapshot(parseConfig(`# a comment\n${EXAMPLE}`), 'b.yaml');
    const c = compileSnapshot(parseConfig(EXAMPLE.replace('weight: 10', 'weight: 11')), 'a.yaml');
    expect(a.version).to.match(/^[0-9a-f]{16}$/);
    expect(b.version).to.equal(a.version);
    expect(c.version).to.not.equal(a.version);
  });

  it('gives a service without a route of its own an implicit route on its name', () => {
    const snapshot = compileSnapshot(parseConfig(EXAMPLE), 'a.yaml');
    expect(snapshot.routes.map((r) => [r.name, r.implicit])).to.deep.equal([['payments-canary', false], ['default-checkout', true]]);
  });

  it('dials an endpoint through the sidecar that fronts it', () => {
    const snapshot = compileSnapshot(parseConfig(EXAMPLE), 'a.yaml');
    const checkout = snapshot.services.get('checkout')!.endpoints[0]!;
    const payments = snapshot.services.get('payments')!.endpoints[0]!;
    expect([checkout.dial, checkout.sidecar]).to.deep.equal(['127.0.0.1:15006', 'checkout']);
    expect([payments.dial, payments.sidecar]).to.deep.equal(['127.0.0.1:9101', undefined]);
  });

  it('is immutable', () => {
    const snapshot = compileSnapshot(parseConfig(EXAMPLE), 'a.yaml');
    expect(Object.isFrozen(snapshot.config.services[0]!.endpoints[0]!.labels)).to.equal(true);
    expect(() => (snapshot.routes as unknown[]).push(1)).to.throw(TypeError);
  });

  it('exports a JSON Schema of the format from the same schema', () => {
    const schema = meshJsonSchema() as { properties: Record<string, unknown>; required: string[] };
    expect(schema.required).to.include('mesh');
    expect(Object.keys(schema.properties)).to.deep.equal(['mesh', 'mtls', 'telemetry', 'services', 'routes', 'sidecars', 'authorization', 'faults', 'faultInjection', 'lint']);
    expect(JSON.stringify(schema)).to.include('ring-hash').and.include('A duration');
  });
});
