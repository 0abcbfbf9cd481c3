// The process log: JSON lines (pino) on stderr, so stdout stays free for command output.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(name: string, level = process.env.FAULTLINE_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: false }));
}

export const silentLogger: Logger = pino({ level: 'silent' });
