// The control plane's HTTP API (express: not a data path). Every route but GET /ca.pem needs a bearer
// token: the admin token, for everything, or a sidecar's join token, for its own service's sidecar
// routes alone (auth.ts); none, or a wrong one, is a 401, and no token reaches a log line. Operators:
// /config, /faults, /sidecars, /events, /leader, /tokens, /gamedays and /schedule (game-days-api.ts).
// Sidecars: the watch stream (server-sent events), acks (on the uplink, or one request each), the
// uplink, and certificate signing. Every error, a parser's or an unknown route's included, is a JSON
// body (http/api-errors.ts).
import express, { type Express, type Router } from 'express';
import { ConfigError } from '../config/errors.ts';
import { ErrorCode } from '../errors.ts';
import { parseFault } from '../faults/admin.ts';
import { endWithJsonErrors } from '../http/api-errors.ts';
import { FaultLimitError } from '../faults/table.ts';
import { readEventStream, streamEvents } from '../telemetry/event-stream.ts';
import type { MeshEvent } from '../telemetry/events.ts';
import type { LeaderView } from './leadership.ts';
import { silentLogger, type Logger } from '../telemetry/log.ts';
import { Address, Labels, Name } from '../config/primitives.ts';
import { parseDuration } from '../config/duration.ts';
import type { ControlPlane } from './plane.ts';
import { DELTAS, DELTAS_HEADER } from './desired-state.ts';
import { DEFAULT_REGISTRATION_TTL_MS, RegistrationConflict } from './instance-registry.ts';
import { ACKS_HEADER, type Ack, type SidecarStatus } from './sidecar-roster.ts';
import { spiffeId } from '../identity/spiffe.ts';
import { allowedAs, callerOf, serviceOfSidecar, type ControlAccess } from './auth.ts';
import { tokenRoutes } from './tokens-api.ts';
import type { Peers } from './peers.ts';
import { stopAllFaults } from './stop.ts';
import { sidecarViews } from './sidecar-views.ts';

export interface IdentityIssuer {
  /** Signs a sidecar's CSR for its service; throws on a bad CSR. */
  issue(sidecar: string, csrPem: string, service?: string): Promise<{ certPem: string; caPem: string; spiffeId: string; notAfter: string }>;
}

/** The merged stream's collector, as the API needs it: when the sidecars' request.done flow in. */
export interface RequestFlow {
  requestsFlowing(ms: number): Promise<void>;
}

/** An ack's fields (POST /v1/ack's body, or an uplink line of type "ack"); undefined without a version. */
export function parseAck(body: unknown): Ack | undefined {
  const { version, error, removed, faults } = (body ?? {}) as { version?: unknown; error?: unknown; removed?: unknown; faults?: unknown };
  if (typeof version !== 'string') return undefined;
  const ids = (list: unknown) => (Array.isArray(list) ? list.filter((id): id is string => typeof id === 'string') : []);
  return { version, error: typeof error === 'string' ? error : null, removed: ids(removed), ...(Array.isArray(faults) && { faults: ids(faults) }) };
}

/** A sidecar's health in GET /sidecars. */
const HEALTHS = ['ready', 'not ready', 'disconnected'];

/** How long a new reader of /events waits, at most, for every sidecar's request.done to flow in. */
const FLOW_WAIT_MS = 3_000;

export interface ControlAppOptions {
  readonly identity?: IdentityIssuer;
  readonly flow?: RequestFlow;
  readonly log?: Logger;
  readonly leader?: LeaderView;
  /**
   * The CA certificate served, without a token, at GET /ca.pem (TLS auto: the CA that signed this
   * API's certificate — a convenience whose copy must be checked out of band, e.g. its fingerprint).
   */
  readonly publicCa?: string;
  /** Mounted behind the token check. */
  readonly routers?: readonly Router[];
  /** Mounted before it (the console's page, its assets and its sign-in: console/routes.ts). */
  readonly publicRouters?: readonly Router[];
  /** The other replicas on the store, which the emergency stop's check asks about their sidecars (peers.ts). */
  readonly peers?: () => Peers | undefined;
}

export function createControlApp(plane: ControlPlane, access: ControlAccess, options: ControlAppOptions = {}): Express {
  const { identity, flow, leader, publicCa, routers = [], publicRouters = [] } = options;
  const log = options.log ?? silentLogger;
  const app = express();
  app.disable('x-powered-by');
  app.set('json spaces', 2);
  if (publicCa) app.get('/ca.pem', (_req, res) => void res.type('application/x-pem-file').send(publicCa));
  for (const router of publicRouters) app.use(router);
  app.use(access.authenticate);
  app.use(tokenRoutes(plane, access, log));
  for (const router of routers) app.use(router);

  app.get('/config', (_req, res) => {
    res.type('application/yaml').set('x-faultline-version', plane.state.version).send(plane.configText);
  });

  app.put('/config', express.text({ type: () => true, limit: '4mb' }), async (req, res) => {
    try {
      const state = await plane.putConfig(typeof req.body === 'string' ? req.body : '', 'PUT /config');
      res.json({ version: state.version });
    } catch (error) {
      if (error instanceof ConfigError) return void res.status(400).json({ error: error.message, problems: error.problems });
      throw error;
    }
  });

  app.get('/faults', (_req, res) => {
    const now = Date.now();
    res.json({ version: plane.state.version, faults: plane.faults.all().map((f) => f.view(now)) });
  });

  app.get('/faults/:id', (req, res) => {
    const fault = plane.faults.get(req.params.id);
    if (!fault) return void res.status(404).json({ error: `no fault "${req.params.id}"` });
    res.json(fault.view());
  });

  app.put('/faults/:id', express.text({ type: () => true, limit: '64kb' }), (req, res) => {
    // If-Match: * (RFC 9110): only if it exists. A lease renewal says so, and cannot bring back a fault
    // removed meanwhile (by the emergency stop) as a plain PUT would.
    if (req.headers['if-match'] === '*' && !plane.faults.get(req.params.id)) {
      return void res.status(412).json({ error: `no runtime fault "${req.params.id}" to renew: it was removed` });
    }
    try {
      const fault = plane.faults.put(parseFault(typeof req.body === 'string' ? req.body : '', req.params.id, plane.snapshot));
      res.json({ version: plane.state.version, fault: fault.view() });
    } catch (error) {
      if (error instanceof ConfigError) return void res.status(400).json({ error: error.message, problems: error.problems });
      if (error instanceof FaultLimitError) return void res.status(422).json({ error: error.message, code: error.code });
      throw error;
    }
  });

  app.delete('/faults/:id', (req, res) => {
    if (!plane.faults.delete(req.params.id)) return void res.status(404).json({ error: `no runtime fault "${req.params.id}"` });
    res.status(204).end();
  });

  // Every runtime fault removed mesh-wide, then checked gone on each sidecar (stop.ts).
  app.delete('/faults', async (_req, res) => {
    res.json(await stopAllFaults(plane, undefined, undefined, options.peers?.()));
  });

  // The emergency stop: as DELETE /faults, and running experiments see the mesh.halted event on the
  // stream (sent as soon as the faults are removed, before the check) and halt; who and when are recorded.
  app.post('/halt', express.json(), async (req, res) => {
    const { by, reason } = (req.body ?? {}) as { by?: unknown; reason?: unknown };
    const who = typeof by === 'string' && by ? by : 'unknown';
    const why = typeof reason === 'string' && reason ? reason : 'emergency stop';
    const at = new Date().toISOString();
    const report = await stopAllFaults(plane, (deleted) => plane.events.emit('mesh.halted', { by: who, reason: why, deleted }), undefined, options.peers?.());
    res.json({ ...report, by: who, reason: why, at });
  });

  app.get('/sidecars', (req, res) => {
    // Health from what each sidecar says over its own connection (wherever its host is): connected and
    // the desired version applied (its events' uplink is listed beside). Nothing asks its admin listener.
    // ?health=not-ready (or ready, disconnected) lists only those: "who is not there yet", in a short answer.
    const only = req.query.health === undefined ? undefined : String(req.query.health).replace('-', ' ');
    if (only !== undefined && !HEALTHS.includes(only)) return void res.status(400).json({ error: `health: one of ${HEALTHS.map((h) => h.replace(' ', '-')).join(', ')}` });
    res.json({ version: plane.state.version, sidecars: sidecarViews(plane).filter((s) => only === undefined || s.health === only) });
  });

  // Which control plane leads (the election "control"; candidates are the replicas' URLs), and this one.
  app.get('/leader', async (_req, res) => {
    if (!leader) return void res.status(404).json({ error: 'this control plane takes no part in an election' });
    res.json({ leader: (await leader.leader()) ?? null, self: leader.candidate, leading: leader.isLeader });
  });

  app.get('/events', async (req, res) => {
    const since = req.query.since === undefined ? undefined : Number(req.query.since);
    if (since !== undefined && !(Number.isInteger(since) && since >= 0)) {
      return void res.status(400).json({ error: 'since must be a whole number: the seq of the last event you have' });
    }
    res.once('close', plane.attachEventReader());
    // Without since, "from now": now is when the reader came, not when its head goes out.
    const from = since ?? plane.events.lastSeq;
    // The head goes out once every sidecar's request.done flow in (sidecars keep them only while
    // read): a recorder that starts its load when the head arrives misses none.
    await flow?.requestsFlowing(FLOW_WAIT_MS);
    if (!res.destroyed) streamEvents(plane.events, from, req, res);
  });

  // Sidecars.
  app.get('/v1/watch', (req, res) => {
    const sidecar = String(req.query.sidecar ?? '');
    if (!sidecar) return void res.status(400).json({ error: 'watch needs ?sidecar=NAME' });
    if (!allowedAs(res, serviceOfSidecar(plane, sidecar), `sidecar "${sidecar}"`)) return;
    // The header says this control plane takes acks on the uplink too (a sidecar then sends them there
    // instead of a POST /v1/ack each); a sidecar that sees no such header keeps posting them.
    // ?deltas=instances: a sidecar that rebuilds states from instance deltas (desired-state.ts) is sent
    // those when only instances changed; the answer's header says this control plane does.
    const deltas = req.query.deltas === DELTAS;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', [ACKS_HEADER]: 'uplink', ...(deltas && { [DELTAS_HEADER]: DELTAS }) });
    res.flushHeaders();
    plane.subscribe(sidecar, res, { deltas });
  });

  // An ack on its own (sidecars before acks rode the uplink, and any sidecar whose uplink is down).
  app.post('/v1/ack', express.json(), (req, res) => {
    const { sidecar } = (req.body ?? {}) as { sidecar?: unknown };
    const ack = parseAck(req.body);
    if (typeof sidecar !== 'string' || !ack) return void res.status(400).json({ error: 'ack needs {sidecar, version}' });
    if (!allowedAs(res, serviceOfSidecar(plane, sidecar), `sidecar "${sidecar}"`)) return;
    plane.acknowledge(sidecar, ack.version, ack.error, ack.removed, ack.faults);
    res.status(204).end();
  });

  // A sidecar that stops cleanly says so: it leaves the list (a sidecar that is gone holds no fault).
  app.post('/v1/leave', express.json(), (req, res) => {
    const { sidecar } = (req.body ?? {}) as { sidecar?: unknown };
    if (typeof sidecar !== 'string') return void res.status(400).json({ error: 'leave needs {sidecar}' });
    if (!allowedAs(res, serviceOfSidecar(plane, sidecar), `sidecar "${sidecar}"`)) return;
    plane.forget(sidecar);
    res.status(204).end();
  });

  // A sidecar's events, pushed: where to resume, then the stream itself (NDJSON in the request body).
  app.get('/v1/uplink', (req, res) => {
    const sidecar = String(req.query.sidecar ?? '');
    if (!sidecar) return void res.status(400).json({ error: 'uplink needs ?sidecar=NAME' });
    if (!allowedAs(res, serviceOfSidecar(plane, sidecar), `sidecar "${sidecar}"`)) return;
    res.json({ since: plane.lastSeqOf(sidecar) });
  });

  app.post('/v1/uplink', async (req, res) => {
    const sidecar = String(req.query.sidecar ?? '');
    if (!sidecar) return void res.status(400).json({ error: 'uplink needs ?sidecar=NAME' });
    if (!allowedAs(res, serviceOfSidecar(plane, sidecar), `sidecar "${sidecar}"`)) return;
    const closed = plane.uplinkOpened(sidecar, req.query.requests === 'true');
    try {
      for await (const event of readEventStream(req)) {
        // Its acks ride the same stream (one line each, no request of their own): of this sidecar only,
        // as the stream was authorized for it.
        if (event.type === 'ack') {
          const ack = parseAck(event);
          if (ack) plane.acknowledge(sidecar, ack.version, ack.error, ack.removed, ack.faults);
          else log.warn({ sidecar }, 'an ack without a version on the uplink, ignored');
          continue;
        }
        if (event.type === 'events.dropped') {
          log.warn({ sidecar, count: event.count }, 'events missed from a sidecar');
          continue;
        }
        plane.relayFrom(sidecar, event as unknown as MeshEvent);
      }
      if (!res.destroyed) res.status(204).end();
    } catch (error) {
      log.debug({ sidecar, error: (error as Error).message }, 'event uplink broke');
    } finally {
      closed();
    }
  });

  app.post('/v1/identity', express.json(), async (req, res) => {
    if (!identity) return void res.status(404).json({ error: 'this control plane issues no identities (mtls is off)' });
    const { sidecar, csr, service } = req.body as { sidecar?: unknown; csr?: unknown; service?: unknown };
    if (typeof sidecar !== 'string' || typeof csr !== 'string') return void res.status(400).json({ error: 'identity needs {sidecar, csr}' });
    if (!allowedAs(res, serviceOfSidecar(plane, sidecar), `no identity for sidecar "${sidecar}", which`)) return;
    let issued: Awaited<ReturnType<IdentityIssuer['issue']>>;
    try {
      issued = await identity.issue(sidecar, csr, typeof service === 'string' ? service : undefined);
    } catch (error) {
      return void res.status(400).json({ error: (error as Error).message });
    }
    // Belt and braces: a join token gets its own service's SPIFFE identity and no other.
    const caller = callerOf(res);
    const { trustDomain, namespace } = plane.snapshot.config.mtls;
    if (caller.kind === 'join' && issued.spiffeId !== spiffeId(trustDomain, namespace, caller.claims.service)) {
      return void res.status(403).json({ error: `this join token is for service "${caller.claims.service}"; it gets no identity ${issued.spiffeId}`, code: ErrorCode.Forbidden });
    }
    res.json(issued);
  });

  // Instances that register themselves (sidecars joined with flags): under a lease they renew.
  app.get('/instances', (_req, res) => {
    res.json({ version: plane.state.version, instances: plane.instances() });
  });

  app.put('/v1/instances/:name', express.json(), async (req, res) => {
    const name = Name.safeParse(req.params.name);
    const body = (req.body ?? {}) as { service?: unknown; address?: unknown; labels?: unknown; ttl?: unknown };
    const service = Name.safeParse(body.service);
    const address = Address.safeParse(body.address);
    const labels = Labels.safeParse(body.labels ?? {});
    const ttlMs = body.ttl === undefined ? DEFAULT_REGISTRATION_TTL_MS : typeof body.ttl === 'string' ? parseDuration(body.ttl) : undefined;
    const problems = [
      !name.success && 'the instance name (in the path): lowercase letters, digits and "-"',
      !service.success && 'service: a service name',
      !address.success && 'address: host:port where other sidecars reach it (its inbound listener)',
      !labels.success && 'labels: an object of strings',
      (ttlMs === undefined || ttlMs < 1_000 || ttlMs > 3_600_000) && 'ttl: a duration from 1s to 1h (default 10s)',
    ].filter(Boolean);
    if (problems.length > 0) return void res.status(400).json({ error: `registration needs ${problems.join('; ')}` });
    // A join token registers instances of its own service only; a name held by another service is a 409 below.
    if (!allowedAs(res, service.data, `instance "${name.data}"`)) return;
    try {
      const record = await plane.register({ name: name.data!, service: service.data!, address: address.data!, labels: labels.data! }, ttlMs!);
      res.json(record);
    } catch (error) {
      if (error instanceof RegistrationConflict) return void res.status(409).json({ error: error.message });
      throw error;
    }
  });

  app.post('/v1/instances/:name/renew', express.json(), async (req, res) => {
    const lease = (req.body as { lease?: unknown } | undefined)?.lease;
    if (typeof lease !== 'string') return void res.status(400).json({ error: 'renew needs {lease}: the id its registration returned' });
    const held = plane.instance(req.params.name);
    if (held && !allowedAs(res, held.service, `instance "${req.params.name}"`)) return;
    if (await plane.renew(req.params.name, lease)) return void res.status(204).end();
    res.status(404).json({ error: `the registration of "${req.params.name}" has ended (its lease expired or it left): register again` });
  });

  app.delete('/v1/instances/:name', async (req, res) => {
    const held = plane.instance(req.params.name);
    if (held && !allowedAs(res, held.service, `instance "${req.params.name}"`)) return;
    if (await plane.deregister(req.params.name)) return void res.status(204).end();
    res.status(404).json({ error: `no instance "${req.params.name}" is registered` });
  });

  endWithJsonErrors(app, log);
  return app;
}

