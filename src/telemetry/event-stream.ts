// Serves a sidecar's event stream as NDJSON over one long-lived HTTP response: first the kept events
// after `since`, then every new one as it happens. A slow reader gets a bounded queue; past it,
// events are dropped and the stream says so in place ({"type":"events.dropped","count":N}), so a
// recorder knows exactly what it missed. Events older than the ring are reported the same way.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventBus } from './events.ts';

const QUEUE_LIMIT = 10_000;

export function streamEvents(
  events: EventBus,
  since: number | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  queueLimit = QUEUE_LIMIT,
): void {
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
  // Send the head now: a reader waits for it before anything happens, and there may be nothing to send yet.
  res.flushHeaders();
  const queue: string[] = [];
  let waiting = false;
  let dropped = 0;
  const write = (line: string) => {
    if (!waiting) {
      waiting = !res.write(line);
    } else if (queue.length < queueLimit) {
      queue.push(line);
    } else {
      dropped++;
      events.countDropped(1);
    }
  };
  res.on('drain', () => {
    waiting = false;
    while (queue.length > 0 && !waiting) waiting = !res.write(queue.shift()!);
    if (!waiting && dropped > 0) {
      waiting = !res.write(droppedLine(dropped));
      dropped = 0;
    }
  });
  const kept = events.since(since ?? events.lastSeq);
  if (kept.missed > 0) write(droppedLine(kept.missed));
  for (const event of kept.events) write(`${JSON.stringify(event)}\n`);
  const unsubscribe = events.onAny((event) => write(`${JSON.stringify(event)}\n`));
  req.once('close', unsubscribe);
  res.once('close', unsubscribe);
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
