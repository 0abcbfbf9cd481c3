// Serves a sidecar's event stream as NDJSON over one long-lived HTTP response: first the kept events
// after `since`, then every new one as it happens, written in batches (at most 20 ms apart). A slow
// reader gets a bounded queue; past it, events are dropped and the stream says so in place
// ({"type":"events.dropped","count":N}), so a recorder knows exactly what it missed. Events no
// longer kept are reported the same way.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventBus } from './events.ts';

const QUEUE_LIMIT = 10_000;
const FLUSH_MS = 20;
const FLUSH_LINES = 256;

export interface StreamOptions {
  /** Whether to send request.done (one per request); without, decisions only. */
  readonly requests?: boolean;
  /** Lines a slow reader may have waiting before events are dropped. */
  readonly queueLimit?: number;
}

export function streamEvents(
  events: EventBus,
  since: number | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  options: StreamOptions = {},
): void {
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
  // Send the head now: a reader waits for it before anything happens, and there may be nothing to send yet.
  res.flushHeaders();
  const stop = pipeEvents(events, since, res, options);
  req.once('close', stop);
}

/** Where events are written: an HTTP response (a reader of /events), or a request body (a sidecar's uplink). */
export interface EventSink {
  write(chunk: string): boolean;
  on(event: 'drain', listener: () => void): unknown;
  once(event: 'close', listener: () => void): unknown;
  readonly destroyed: boolean;
}

/**
 * Writes the kept events after `since`, then every new one, to the sink until it closes (or the
 * returned stop is called). Returns the stop.
 */
export function pipeEvents(events: EventBus, since: number | undefined, sink: EventSink, { requests = true, queueLimit = QUEUE_LIMIT }: StreamOptions = {}): () => void {
  // New events wait up to FLUSH_MS (or until FLUSH_LINES have gathered) and go out together in one
  // write: a sidecar emits an event per request, and a write per event (a syscall, and on loopback
  // the receiving side's TCP work too) cost its data plane a fifth of its throughput
  // (docs/benchmarks.md). While the sink's buffer is full, they wait for 'drain'.
  let lines: string[] = [];
  let blocked = false;
  let timer: NodeJS.Timeout | undefined;
  let dropped = 0;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (blocked || sink.destroyed) return;
    if (dropped > 0) {
      lines.push(droppedLine(dropped));
      dropped = 0;
    }
    if (lines.length === 0) return;
    const chunk = lines.join('');
    lines = [];
    blocked = !sink.write(chunk);
  };
  sink.on('drain', () => {
    blocked = false;
    flush();
  });
  // While this reader takes request.done, the bus keeps them for readers that resume (and a while after).
  const release = requests ? events.readRequests() : undefined;
  const kept = events.since(since ?? events.lastSeq, requests);
  // What was kept goes out at once (it is bounded by the bus's history), before anything new.
  const replay = kept.events.map((event) => `${JSON.stringify(event)}\n`);
  if (kept.missed > 0) replay.unshift(droppedLine(kept.missed));
  if (replay.length > 0) blocked = !sink.write(replay.join(''));
  const unsubscribe = events.onAny((event) => {
    if (!requests && event.type === 'request.done') return;
    if (lines.length >= queueLimit) {
      dropped++;
      events.countDropped(1);
      return;
    }
    lines.push(`${JSON.stringify(event)}\n`);
    if (blocked) return;
    if (lines.length >= FLUSH_LINES) flush();
    else timer ??= setTimeout(flush, FLUSH_MS);
  });
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    unsubscribe();
    release?.();
    clearTimeout(timer);
  };
  sink.once('close', stop);
  return stop;
}

function droppedLine(count: number): string {
  return `${JSON.stringify({ type: 'events.dropped', count })}\n`;
}

/** Reads an NDJSON event stream (this one, from another process) object by object. */
export async function* readEventStream(body: AsyncIterable<Buffer | string>): AsyncGenerator<Record<string, unknown>> {
  let buffer = '';
  for await (const chunk of body) {
    buffer += String(chunk);
    let newline: number;
    while ((newline = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (line) yield JSON.parse(line) as Record<string, unknown>;
    }
  }
}
