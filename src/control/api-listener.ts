// The control plane's API listener: plain HTTP, or HTTPS (TLS 1.2+, HTTP/1.1) with the operator's
// certificate or one it issues itself from the mesh CA (--tls auto: SANs for its listen address and
// --tls-san names, renewed at two thirds of its life). On a TLS port, a plain-HTTP request is answered
// in plain HTTP — 400, saying to use https:// — rather than cut with a TLS alert the client cannot read.
import { X509Certificate } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type RequestListener, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer, isIP, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { ErrorCode, FaultlineError } from '../errors.ts';
import type { CaMaterial, MeshCa } from '../identity/ca.ts';
import { silentLogger, type Logger } from '../telemetry/log.ts';
import { CONTROL_CA_FILE, TLS_REQUIRED_HEADER } from '../http/control-transport.ts';

/** How the API is served over TLS: the operator's certificate and key files, or one issued from the mesh CA. */
export type ControlTls =
  | { readonly mode: 'files'; readonly certFile: string; readonly keyFile: string }
  | { readonly mode: 'auto'; readonly sans?: readonly string[]; readonly ttlMs?: number };

export interface ControlListener {
  readonly url: string;
  /** With --tls auto: the CA bundle written for clients (`<state-dir>/control-ca.pem`) and its SHA-256 fingerprint. */
  readonly caFile?: string;
  readonly caFingerprint?: string;
  close(): Promise<void>;
}

/** A self-issued serving certificate lives a week, renewed after two thirds of it; clients trust the CA, not it. */
const DEFAULT_SERVING_TTL_MS = 7 * 86_400_000;
const RETRY_RENEWAL_MS = 60_000;
/** A connection that says nothing is not kept waiting for its first byte forever. */
const FIRST_BYTE_TIMEOUT_MS = 10_000;
const TLS_HANDSHAKE = 0x16;
const DNS_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/** Throws unless `name` is an IP address or a DNS name (what a --tls-san can be). */
export function checkSan(name: string): void {
  if (isIP(name) === 0 && !DNS_NAME.test(name)) throw new FaultlineError(ErrorCode.ConfigInvalid, `--tls-san "${name}": not a DNS name or an IP address`);
}

export async function listenControl(app: RequestListener, listen: string, options: { tls?: ControlTls; ca: MeshCa; stateDir: string; log?: Logger }): Promise<ControlListener & { server: HttpServer | HttpsServer }> {
  const log = options.log ?? silentLogger;
  const colon = listen.lastIndexOf(':');
  const host = listen.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(colon + 1));
  if (!options.tls) {
    const server = createHttpServer(app);
    const bound = await bind(server, host, port);
    return { server, url: `http://${bound}`, close: () => closeServer(server, server) };
  }
  const tls = options.tls;
  const self = tls.mode === 'auto' ? await SelfIssued.start(options.ca, await servingNames(host, tls.sans ?? []), tls.ttlMs ?? DEFAULT_SERVING_TTL_MS, log) : undefined;
  const server = createHttpsServer({ ...secure(self?.material ?? (await operatorFiles(tls as Extract<ControlTls, { mode: 'files' }>))), ALPNProtocols: ['http/1.1'] }, app);
  self?.onRenew((material) => server.setSecureContext(secure(material)));
  // Every connection, to end them all on close: those handed to the TLS server are not its own to close.
  const sockets = new Set<Socket>();
  const front = createNetServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    route(socket, server);
  });
  const bound = await bind(front, host, port).catch((error: unknown) => {
    self?.close();
    throw error;
  });
  const caFile = self && (await writeCaBundle(options.stateDir, options.ca.certPem));
  log.info({ tls: tls.mode, ...(self && { names: self.names }) }, 'control plane API over TLS');
  return {
    server,
    url: `https://${bound}`,
    ...(caFile && { caFile, caFingerprint: fingerprint(options.ca.certPem) }),
    close: () => {
      self?.close();
      for (const socket of sockets) socket.destroy();
      return closeServer(front, server);
    },
  };
}

/** The TLS context of a certificate and key: TLS 1.2 at least. */
function secure(material: CaMaterial): { cert: string; key: string; minVersion: 'TLSv1.2' } {
  return { cert: material.certPem, key: material.keyPem, minVersion: 'TLSv1.2' };
}

/**
 * --tls auto's certificate: issued from the mesh CA for `names`, and issued again at two thirds of its
 * life (a minute later when that fails, while the one in use still holds). It is served followed by
 * the CA certificate, so that a client trusting an operator's root above an intermediate CA can chain it.
 */
class SelfIssued {
  readonly names: { dnsNames: string[]; ipAddresses: string[] };
  material: CaMaterial;
  readonly #ca: MeshCa;
  readonly #ttlMs: number;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #renewed: ((material: CaMaterial) => void) | undefined;

  private constructor(ca: MeshCa, names: SelfIssued['names'], ttlMs: number, log: Logger, material: CaMaterial) {
    this.#ca = ca;
    this.names = names;
    this.#ttlMs = ttlMs;
    this.#log = log;
    this.material = material;
  }

  static async start(ca: MeshCa, names: SelfIssued['names'], ttlMs: number, log: Logger): Promise<SelfIssued> {
    const issuedAt = Date.now();
    const { material, notAfter } = await SelfIssued.#issue(ca, names, ttlMs);
    const self = new SelfIssued(ca, names, ttlMs, log, material);
    self.#schedule(notAfter, issuedAt);
    return self;
  }

  onRenew(renewed: (material: CaMaterial) => void): void {
    this.#renewed = renewed;
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#renewed = undefined;
  }

  static async #issue(ca: MeshCa, names: SelfIssued['names'], ttlMs: number): Promise<{ material: CaMaterial; notAfter: Date }> {
    const issued = await ca.issueServer(names, ttlMs);
    return { material: { certPem: issued.certPem + ca.certPem, keyPem: issued.keyPem }, notAfter: issued.notAfter };
  }

  #schedule(notAfter: Date, issuedAt: number): void {
    this.#timer = setTimeout(() => void this.#renew(), Math.max(1_000, ((notAfter.getTime() - issuedAt) * 2) / 3)).unref();
  }

  async #renew(): Promise<void> {
    const issuedAt = Date.now();
    try {
      const { material, notAfter } = await SelfIssued.#issue(this.#ca, this.names, this.#ttlMs);
      if (!this.#timer) return;
      this.material = material;
      this.#renewed?.(material);
      this.#log.info({ notAfter: notAfter.toISOString() }, 'control plane serving certificate renewed');
      this.#schedule(notAfter, issuedAt);
    } catch (error) {
      if (!this.#timer) return;
      this.#log.error({ error: (error as Error).message }, 'could not renew the serving certificate; retrying in a minute');
      this.#timer = setTimeout(() => void this.#renew(), RETRY_RENEWAL_MS).unref();
    }
  }
}

/** Hands a connection to the TLS server when it starts a handshake; answers anything else in plain HTTP. */
function route(socket: Socket, server: HttpsServer): void {
  socket.setTimeout(FIRST_BYTE_TIMEOUT_MS, () => socket.destroy());
  socket.once('error', () => socket.destroy());
  socket.once('data', (chunk: Buffer) => {
    socket.setTimeout(0);
    socket.pause();
    if (chunk[0] === TLS_HANDSHAKE) {
      // The TLS socket takes the bytes already read from what is buffered (node's _tls_wrap does).
      socket.unshift(chunk);
      server.emit('connection', socket);
      return;
    }
    const body = JSON.stringify({ error: 'this control plane serves HTTPS: use an https:// URL (and --control-ca with its CA)', code: ErrorCode.ControlTls });
    socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n${TLS_REQUIRED_HEADER}: required\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });
}

async function operatorFiles(files: { certFile: string; keyFile: string }): Promise<{ certPem: string; keyPem: string }> {
  const read = (file: string, flag: string) => readFile(file, 'utf8').catch((error: Error) => {
    throw new FaultlineError(ErrorCode.ConfigUnreadable, `${flag} ${file}: cannot read it (${error.message})`, { cause: error });
  });
  const material = { certPem: await read(files.certFile, '--tls-cert'), keyPem: await read(files.keyFile, '--tls-key') };
  try {
    createSecureContext({ cert: material.certPem, key: material.keyPem });
    const leaf = new X509Certificate(material.certPem);
    if (Date.parse(leaf.validTo) <= Date.now()) throw new Error(`the certificate expired on ${leaf.validTo}`);
  } catch (error) {
    throw new FaultlineError(ErrorCode.ConfigInvalid, `--tls-cert ${files.certFile} / --tls-key ${files.keyFile}: ${(error as Error).message}`, { cause: error });
  }
  return material;
}

/**
 * What the self-issued certificate names: the listen host (and, for a name, the addresses it resolves
 * to); for a wildcard, this machine's name, localhost and every address of its interfaces; and --tls-san.
 */
async function servingNames(host: string, sans: readonly string[]): Promise<{ dnsNames: string[]; ipAddresses: string[] }> {
  const names = new Set<string>();
  if (host === '' || host === '0.0.0.0' || host === '::') {
    names.add(hostname()).add('localhost');
    for (const address of Object.values(networkInterfaces()).flat()) if (address && !address.address.includes('%') && !address.address.startsWith('fe80:')) names.add(address.address);
  } else {
    names.add(host);
    if (isIP(host) === 0) for (const { address } of await lookup(host, { all: true }).catch(() => [])) names.add(address);
  }
  for (const san of sans) {
    checkSan(san);
    names.add(san);
  }
  const all = [...names].map((n) => n.toLowerCase());
  return { dnsNames: all.filter((n) => isIP(n) === 0), ipAddresses: all.filter((n) => isIP(n) !== 0) };
}

/** The CA certificate (no key) as a file operators copy to hosts: 0644, replaced whole. */
async function writeCaBundle(stateDir: string, certPem: string): Promise<string> {
  await mkdir(stateDir, { recursive: true });
  const file = join(stateDir, CONTROL_CA_FILE);
  await writeFile(`${file}.tmp`, certPem, { mode: 0o644 });
  await chmod(`${file}.tmp`, 0o644);
  await rename(`${file}.tmp`, file);
  return file;
}

/** SHA-256 of the certificate's DER, as colon-separated hex (what openssl x509 -fingerprint -sha256 prints). */
export function fingerprint(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}

async function bind(server: NetServer, host: string, port: number): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  return `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;
}

async function closeServer(listening: NetServer, http: HttpServer | HttpsServer): Promise<void> {
  http.closeAllConnections();
  await new Promise<void>((resolve) => listening.close(() => resolve()));
  if (listening !== http) http.close();
}
