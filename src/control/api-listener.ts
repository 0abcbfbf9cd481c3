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
import type { MeshCa } from '../identity/ca.ts';
import { silentLogger, type Logger } from '../telemetry/log.ts';
import { CONTROL_CA_FILE, TLS_REQUIRED_HEADER } from './transport.ts';

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
  const auto = options.tls.mode === 'auto' ? options.tls : undefined;
  const names = auto && (await servingNames(host, auto.sans ?? []));
  const first = auto ? await options.ca.issueServer(names!, auto.ttlMs ?? DEFAULT_SERVING_TTL_MS) : await operatorFiles(options.tls as Extract<ControlTls, { mode: 'files' }>);
  const secure = (material: { certPem: string; keyPem: string }) => ({ cert: material.certPem, key: material.keyPem, minVersion: 'TLSv1.2' as const });
  const server = createHttpsServer({ ...secure(first), ALPNProtocols: ['http/1.1'] }, app);
  const front = createNetServer((socket) => route(socket, server));
  const bound = await bind(front, host, port);
  let renewal: NodeJS.Timeout | undefined;
  if (auto) {
    const renewAfter = (notAfter: Date, issuedAt: number) => setTimeout(renew, Math.max(1_000, ((notAfter.getTime() - issuedAt) * 2) / 3)).unref();
    const renew = () => {
      const issuedAt = Date.now();
      options.ca.issueServer(names!, auto.ttlMs ?? DEFAULT_SERVING_TTL_MS).then((next) => {
        server.setSecureContext(secure(next));
        log.info({ notAfter: next.notAfter.toISOString() }, 'control plane serving certificate renewed');
        renewal = renewAfter(next.notAfter, issuedAt);
      }, (error: Error) => {
        log.error({ error: error.message }, 'could not renew the serving certificate; retrying in a minute');
        renewal = setTimeout(renew, RETRY_RENEWAL_MS).unref();
      });
    };
    renewal = renewAfter((first as { notAfter: Date }).notAfter, Date.now());
  }
  const caFile = auto && (await writeCaBundle(options.stateDir, options.ca.certPem));
  log.info({ tls: options.tls.mode, ...(names && { names }) }, 'control plane API over TLS');
  return {
    server,
    url: `https://${bound}`,
    ...(caFile && { caFile, caFingerprint: fingerprint(options.ca.certPem) }),
    close: () => {
      clearTimeout(renewal);
      return closeServer(front, server);
    },
  };
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
