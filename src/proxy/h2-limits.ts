// The limits every HTTP/2 server of a sidecar runs with (its outbound and inbound listeners), against
// callers that would hold it: node:http2's defaults let a peer open 2^32-1 streams at once, so each is
// set here, in one place (docs/architecture.md, "Protocols").
import type { ServerOptions } from 'node:http2';

export const HTTP2_LIMITS = {
  /** Streams one session may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS; Node's default is 2^32-1); more are refused. Sessions are capped by the listener's maxConnections. */
  maxConcurrentStreams: 256,
  /** Header fields (request head or trailers) one request may carry; more: the stream is reset. */
  maxHeaderListPairs: 256,
  /** Bytes of header list (SETTINGS_MAX_HEADER_LIST_SIZE), as HTTP/1.1's 16 KiB head limit in Node, ×4 for gRPC metadata. */
  maxHeaderListSize: 64 * 1024,
  /** Streams the server refused (over maxConcurrentStreams) before the session is closed. */
  maxSessionRejectedStreams: 100,
  /** Invalid frames before the session is closed. */
  maxSessionInvalidFrames: 100,
  /**
   * Stream resets a peer may send: a burst, then a rate per second; past them the session is closed with
   * GOAWAY ENHANCE_YOUR_CALM (HTTP/2 rapid reset, CVE-2023-44487: HEADERS then RST_STREAM in a loop
   * costs the attacker nothing and the proxy a request each).
   */
  streamResetBurst: 200,
  streamResetRate: 50,
  /** Memory nghttp2 may hold for one session, MB (Node's default 10): past it, new streams get ENHANCE_YOUR_CALM. */
  maxSessionMemory: 32,
  /** A session without a frame for this long is closed (as HTTP/1.1 keep-alive connections are, 65 s). */
  idleTimeoutMs: 65_000,
} as const;

/** The options of a sidecar's HTTP/2 server. */
export function http2ServerOptions(): ServerOptions {
  const l = HTTP2_LIMITS;
  return {
    settings: { maxConcurrentStreams: l.maxConcurrentStreams, maxHeaderListSize: l.maxHeaderListSize, enablePush: false },
    maxHeaderListPairs: l.maxHeaderListPairs,
    maxSessionRejectedStreams: l.maxSessionRejectedStreams,
    maxSessionInvalidFrames: l.maxSessionInvalidFrames,
    streamResetBurst: l.streamResetBurst,
    streamResetRate: l.streamResetRate,
    maxSessionMemory: l.maxSessionMemory,
  };
}
