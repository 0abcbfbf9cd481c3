// The access log: one JSON line (pino) per request, from the request.done event, to a file or stdout.
// Off unless asked for (`faultline sidecar --access-log FILE|-`).
import { pino } from 'pino';
import type { EventBus } from './events.ts';

export interface AccessLog {
  close(): Promise<void>;
}

export function openAccessLog(events: EventBus, destination: string): AccessLog {
  const stream = destination === '-'
    ? pino.destination({ fd: 1, sync: false })
    : pino.destination({ dest: destination, sync: false, mkdir: true });
  const log = pino({ base: null, timestamp: pino.stdTimeFunctions.isoTime }, stream);
  const unsubscribe = events.on('request.done', (e) => {
    log.info({
      sidecar: e.sidecar,
      requestId: e.requestId,
      traceId: e.traceId,
      direction: e.direction,
      source: e.source,
      method: e.method,
      protocol: e.protocol,
      authority: e.authority,
      path: e.path,
      status: e.status,
      grpcStatus: e.grpcStatus,
      flags: e.flags.join(','),
      durationMs: Math.round(e.durationMs * 1000) / 1000,
      service: e.service,
      route: e.route,
      endpoint: e.endpoint,
      attempts: e.attempts,
      requestBytes: e.requestBytes,
      responseBytes: e.responseBytes,
    });
  });
  return {
    close: () => new Promise((resolve) => {
      unsubscribe();
      stream.flushSync();
      if (destination === '-') return resolve();
      stream.once('close', () => resolve());
      stream.end();
    }),
  };
}
