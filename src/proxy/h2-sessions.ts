// The HTTP/2 upstream pool: per endpoint (and, under mTLS, per identity it must present) the sessions
// that requests share, multiplexed. A request takes the first session with a free stream under the
// peer's SETTINGS_MAX_CONCURRENT_STREAMS (100 assumed until its SETTINGS come, as RFC 9113 §6.5.2
// advises) and opens another session when all are full; balancing stays per request (balance.ts picks
// the endpoint for every request), never per connection. A session that received GOAWAY takes no new
// stream: the next request opens a fresh one while the old one's streams finish.
//
// node:http2 rather than undici's HTTP/2 client (allowH2 / H2CClient, undici 8): undici cannot send
// request trailers (a TODO in lib/dispatcher/client-h2.js) and replays refused or GOAWAY'd requests on
// its own, once and out of the retry layer's sight (no retry event, no budget, no attempt count);
// undici's GOAWAY handling was still being fixed in 2026 (nodejs/undici#3140, #5453). Here the exact
// RST_STREAM code, the GOAWAY's lastStreamID, trailers both ways and flow control are ours, and a
// refused stream becomes an error the retry layer retries as `refused-stream`.
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders } from 'node:http2';
import { HTTP2_LIMITS } from './h2-limits.ts';
import { meshSocket, type MeshPeer } from './mesh-tls.ts';

/** Streams a session is assumed to allow until the peer's SETTINGS arrive. */
const ASSUMED_MAX_STREAMS = 100;
/** A session without streams for this long is closed (undici's keep-alive for HTTP/1.1 here is 4 s; sessions are fewer and dearer to open). */
const IDLE_MS = 30_000;
/** Windows larger than HTTP/2's 64 KiB default: a stream may have 1 MiB in flight, the session 8 MiB; flow control still holds a stream whose reader stops. */
const STREAM_WINDOW = 1024 * 1024;
const SESSION_WINDOW = 8 * 1024 * 1024;

/** One pooled session and what the pool knows of it. */
export class PooledSession {
  readonly session: ClientHttp2Session;
  readonly address: string;
  active = 0;
  /** Its socket connected (and, under mTLS, finished the handshake): a failure after this is no connect failure. */
  connected = false;
  /** The GOAWAY it received: streams with ids above lastStreamID were not processed (RFC 9113 §6.8). */
  goaway: { code: number; lastStreamID: number } | undefined;
  /** The error it ended with, if any. */
  error: Error | undefined;
  #settled = false;
  #idle: NodeJS.Timeout | undefined;
  readonly #pool: Pool;

  constructor(address: string, peer: MeshPeer | undefined, pool: Pool) {
    this.address = address;
    this.#pool = pool;
    const socket = meshSocket(address, peer);
    // The socket's own error (refused, timed out, the wrong SPIFFE ID) says why a connect failed; the
    // session's streams close before the session reports it.
    socket.once('error', (error: Error) => (this.error ??= error));
    this.session = connect(`http://${address}`, {
      createConnection: () => socket,
      settings: { initialWindowSize: STREAM_WINDOW, enablePush: false },
      // The peer's header list may be as large as what a sidecar's own edge accepts, and its session
      // hold as much (h2-limits.ts): one sidecar's many callers share this session.
      maxHeaderListPairs: HTTP2_LIMITS.maxHeaderListPairs,
      maxSessionMemory: HTTP2_LIMITS.maxSessionMemory,
    });
    const session = this.session;
    session.once('connect', () => {
      this.connected = true;
      session.setLocalWindowSize(SESSION_WINDOW);
    });
    session.once('remoteSettings', (settings) => {
      this.#settled = true;
      pool.peerMaxStreams = settings.maxConcurrentStreams;
    });
    session.on('goaway', (code: number, lastStreamID: number) => {
      this.goaway = { code, lastStreamID };
      pool.remove(this);
    });
    session.on('error', (error: Error) => (this.error ??= error));
    session.once('close', () => {
      clearTimeout(this.#idle);
      pool.remove(this);
    });
  }

  /** Takes no new stream: closed, closing, or told to go away. */
  get gone(): boolean {
    return this.goaway !== undefined || this.session.closed || this.session.destroyed;
  }

  /** At the peer's limit of streams: its SETTINGS', or before they come what its earlier sessions said (else 100). */
  get full(): boolean {
    const max = this.#settled ? this.session.remoteSettings.maxConcurrentStreams : this.#pool.peerMaxStreams;
    return this.active >= (max ?? ASSUMED_MAX_STREAMS);
  }

  /** Opens a stream; the session counts it until it closes. Throws when the session cannot take it. */
  request(headers: OutgoingHttpHeaders, endStream: boolean, waitForTrailers: boolean): ClientHttp2Stream {
    const stream = this.session.request(headers, { endStream, waitForTrailers });
    clearTimeout(this.#idle);
    this.active++;
    stream.once('close', () => {
      if (--this.active === 0 && !this.gone) this.#idle = setTimeout(() => this.session.close(), IDLE_MS).unref();
    });
    return stream;
  }

  /**
   * Whether a stream that ended without a response was never processed by the peer, so may be sent
   * again: refused (REFUSED_STREAM), above a GOAWAY's lastStreamID, or never given an id.
   */
  unprocessed(stream: ClientHttp2Stream): boolean {
    if (stream.rstCode === constants.NGHTTP2_REFUSED_STREAM) return true;
    if (stream.id === undefined) return true;
    return this.goaway !== undefined && stream.id > this.goaway.lastStreamID;
  }
}

/** The sessions to one endpoint (and identity), and what its peer said of its streams. */
class Pool {
  readonly sessions: PooledSession[] = [];
  /** SETTINGS_MAX_CONCURRENT_STREAMS from the peer's last session: a new session assumes it until its own SETTINGS come. */
  peerMaxStreams: number | undefined;
  readonly #onEmpty: () => void;

  constructor(onEmpty: () => void) {
    this.#onEmpty = onEmpty;
  }

  remove(pooled: PooledSession): void {
    const at = this.sessions.indexOf(pooled);
    if (at !== -1) this.sessions.splice(at, 1);
    if (this.sessions.length === 0) this.#onEmpty();
  }
}

export class Http2Sessions {
  readonly #pools = new Map<string, Pool>();
  readonly #peer: (service: string | undefined, address: string) => MeshPeer | undefined;

  /** `peer` says how to reach an address over mTLS (a peer sidecar's inbound, mTLS on), or undefined for plain h2c. */
  constructor(peer: (service: string | undefined, address: string) => MeshPeer | undefined) {
    this.#peer = peer;
  }

  /** A session to `address` with a free stream, for a request to `service`: an open one, else a new one. */
  session(service: string | undefined, address: string): PooledSession {
    const peer = this.#peer(service, address);
    const key = peer ? `${peer.want} ${address}` : address;
    let pool = this.#pools.get(key);
    if (!pool) {
      const created: Pool = new Pool(() => {
        if (this.#pools.get(key) === created) this.#pools.delete(key);
      });
      this.#pools.set(key, (pool = created));
    }
    for (const pooled of pool.sessions) if (!pooled.gone && !pooled.full) return pooled;
    const pooled = new PooledSession(address, peer, pool);
    pool.sessions.push(pooled);
    return pooled;
  }

  close(): Promise<void> {
    const all = [...this.#pools.values()].flatMap((pool) => pool.sessions);
    this.#pools.clear();
    return Promise.all(
      all.map((pooled) => new Promise<void>((resolve) => {
        if (pooled.session.destroyed) return resolve();
        pooled.session.once('close', () => resolve());
        pooled.session.destroy();
      })),
    ).then(() => undefined);
  }
}
