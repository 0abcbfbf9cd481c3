// An L4 fault proxy: raw TCP from a listener to one upstream, each connection's bytes passing through
// the toxics chosen for it (Toxiproxy's set, per direction; see toxics/). Client→upstream bytes go
// through the "upstream" toxics in order, upstream→client bytes through the "downstream" ones, piped
// with backpressure; a FIN from either side reaches the other once delayed data is out.
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createStage, type TcpToxicSpec, type ToxicLink, type ToxicStage } from '../../faults/tcp/toxics/index.ts';

export type { TcpToxicSpec } from '../../faults/tcp/toxics/index.ts';

export interface TcpToxicRule {
  /** The fault id this toxic belongs to. */
  readonly id: string;
  /** upstream = client→server bytes, downstream = server→client bytes. */
  readonly direction: 'upstream' | 'downstream';
  readonly toxic: TcpToxicSpec;
}

export interface TcpProxyOptions {
  /** "127.0.0.1:0" style host:port (IPv6 as [::1]:port). */
  readonly listen: string;
  /** host:port to connect to. */
  readonly upstream: string;
  /** Called once per accepted connection (ordinal counts from 1): the toxics that apply to it, in order. */
  readonly select: (ordinal: number) => readonly TcpToxicRule[];
  /** Checked as data flows: a toxic whose fault was removed stops acting at once (data passes untouched). */
  readonly isActive: (id: string) => boolean;
  /** Told when a toxic first acts on a connection (for telemetry). */
  readonly onApplied?: (rule: TcpToxicRule, ordinal: number) => void;
}

/** How long a closing connection may take to deliver what it already let through before it is destroyed. */
const CLOSE_LINGER_MS = 5_000;

export class TcpProxy {
  readonly address: string;
  readonly #server: Server;
  readonly #options: TcpProxyOptions;
  readonly #target: { host: string; port: number };
  readonly #connections = new Set<Connection>();
  #accepted = 0;
  #closing: Promise<void> | undefined;
  #allGone: (() => void) | undefined;

  private constructor(server: Server, options: TcpProxyOptions) {
    this.#server = server;
    this.#options = options;
    this.#target = parseHostPort(options.upstream);
    this.address = formatAddress(server.address() as AddressInfo);
    server.on('connection', (socket) => this.#accept(socket));
  }

  static async start(options: TcpProxyOptions): Promise<TcpProxy> {
    const { host, port } = parseHostPort(options.listen);
    parseHostPort(options.upstream);
    const server = createServer({ allowHalfOpen: true, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new TcpProxy(server, options);
  }

  /** Open client connections. */
  get connections(): number {
    return this.#connections.size;
  }

  /** Stops listening and destroys every connection; resolves once all sockets are gone. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const listenerClosed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      const connectionsGone = new Promise<void>((resolve) => {
        if (this.#connections.size === 0) resolve();
        else this.#allGone = resolve;
      });
      for (const connection of this.#connections) connection.destroy();
      await Promise.all([listenerClosed, connectionsGone]);
    })();
    return this.#closing;
  }

  #accept(client: Socket): void {
    if (this.#closing) {
      client.destroy();
      return;
    }
    const ordinal = ++this.#accepted;
    let rules: readonly TcpToxicRule[];
    try {
      rules = this.#options.select(ordinal);
    } catch {
      client.on('error', () => {});
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ ...this.#target, allowHalfOpen: true, noDelay: true });
    const connection = new Connection(client, upstream, ordinal, rules, this.#options, () => {
      this.#connections.delete(connection);
      if (this.#connections.size === 0) this.#allGone?.();
    });
    this.#connections.add(connection);
  }
}

type ConnectionState = 'connecting' | 'open' | 'closing' | 'destroyed';

/** One client socket, its upstream socket, and the toxic stages of both directions between them. */
class Connection {
  readonly #client: Socket;
  readonly #upstream: Socket;
  readonly #ordinal: number;
  readonly #rules: readonly TcpToxicRule[];
  readonly #options: TcpProxyOptions;
  readonly #onGone: () => void;
  #state: ConnectionState = 'connecting';
  #stages: ToxicStage[] = [];
  #upstreamHead: NodeJS.WritableStream | undefined;
  #downstreamHead: NodeJS.WritableStream | undefined;
  #linger: NodeJS.Timeout | undefined;
  #openSockets = 2;

  constructor(client: Socket, upstream: Socket, ordinal: number, rules: readonly TcpToxicRule[], options: TcpProxyOptions, onGone: () => void) {
    this.#client = client;
    this.#upstream = upstream;
    this.#ordinal = ordinal;
    this.#rules = rules;
    this.#options = options;
    this.#onGone = onGone;
    for (const socket of [client, upstream]) {
      socket.on('error', (error: NodeJS.ErrnoException) => this.#failed(socket, error));
      socket.once('close', () => this.#socketClosed(socket));
    }
    upstream.once('connect', () => this.#wire());
  }

  /** Closes both sockets at once (no reset asked for), dropping whatever is in flight. */
  destroy(): void {
    this.#teardown(false);
  }

  #wire(): void {
    if (this.#state !== 'connecting') return;
    this.#state = 'open';
    const upstreamStages: ToxicStage[] = [];
    const downstreamStages: ToxicStage[] = [];
    for (const rule of this.#rules) {
      const stage = createStage(rule.toxic, this.#link(rule));
      (rule.direction === 'upstream' ? upstreamStages : downstreamStages).push(stage);
    }
    this.#stages = [...upstreamStages, ...downstreamStages];
    this.#upstreamHead = chain(this.#client, upstreamStages, this.#upstream);
    this.#downstreamHead = chain(this.#upstream, downstreamStages, this.#client);
    for (const stage of this.#stages) stage.start();
  }

  #link(rule: TcpToxicRule): ToxicLink {
    let applied = false;
    return {
      active: () => this.#options.isActive(rule.id),
      applied: () => {
        if (applied) return;
        applied = true;
        this.#options.onApplied?.(rule, this.#ordinal);
      },
      close: () => this.#close(),
      reset: () => this.#teardown(true),
    };
  }

  /**
   * Ends the connection gracefully: both sources stop being read (what they still send is discarded),
   * each direction's stages deliver what they already let through, each socket is ended and then closed.
   */
  #close(): void {
    if (this.#state !== 'open') return;
    this.#state = 'closing';
    // Not from inside a stage's write: unpiping there would race the pipe's own pause().
    process.nextTick(() => {
      if (this.#state !== 'closing') return;
      for (const stage of this.#stages) stage.closing();
      stopReading(this.#client, this.#upstreamHead!);
      stopReading(this.#upstream, this.#downstreamHead!);
      for (const socket of [this.#client, this.#upstream]) {
        if (socket.writableFinished) socket.destroy();
        else socket.once('finish', () => socket.destroy());
      }
      this.#linger = setTimeout(() => this.#teardown(false), CLOSE_LINGER_MS);
    });
  }

  #teardown(reset: boolean): void {
    if (this.#state === 'destroyed') return;
    this.#state = 'destroyed';
    clearTimeout(this.#linger);
    for (const stage of this.#stages) stage.destroy();
    for (const socket of [this.#client, this.#upstream]) {
      if (socket.destroyed) continue;
      if (reset) socket.resetAndDestroy();
      else socket.destroy();
    }
  }

  #failed(socket: Socket, error: NodeJS.ErrnoException): void {
    // The upstream could not be reached: the client is refused the way a closed port refuses it.
    const refused = this.#state === 'connecting' && socket === this.#upstream;
    this.#teardown(refused || error.code === 'ECONNRESET');
  }

  #socketClosed(socket: Socket): void {
    // A side that goes away before the connection is wired takes the other with it.
    if (this.#state === 'connecting') this.#teardown(socket === this.#upstream);
    if (--this.#openSockets > 0) return;
    this.#state = 'destroyed';
    clearTimeout(this.#linger);
    for (const stage of this.#stages) stage.destroy();
    this.#onGone();
  }
}

/** source → stages… → destination; returns what the source writes into (the first stage, or the destination). */
function chain(source: Socket, stages: readonly ToxicStage[], destination: Socket): NodeJS.WritableStream {
  let readable: NodeJS.ReadableStream = source;
  for (const stage of stages) readable = readable.pipe(stage);
  readable.pipe(destination);
  return stages[0] ?? destination;
}

/** Stops feeding a direction: the source is unpiped and drained into nothing, its first stage ended. */
function stopReading(source: Socket, head: NodeJS.WritableStream): void {
  source.unpipe(head);
  source.resume();
  head.end();
}

function parseHostPort(address: string): { host: string; port: number } {
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:]+):(\d+)$/.exec(address);
  const port = Number(match?.[2]);
  if (!match || !Number.isInteger(port) || port > 65_535) throw new Error(`not a host:port address: "${address}"`);
  return { host: match[1]!, port };
}

function formatAddress(info: AddressInfo): string {
  return info.family === 'IPv6' ? `[${info.address}]:${info.port}` : `${info.address}:${info.port}`;
}
