import { pino, type Logger } from 'pino';

/** One JSON logger per process, on stderr so that stdout stays for what a person reads. */
export function createLogger(level: string, name = 'mcpship'): Logger {
  return pino({ name, level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination(2));
}

export type { Logger };
