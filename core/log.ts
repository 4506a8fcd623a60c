import { pino, type Logger } from 'pino';

/** One logger for the whole process; components take a child with their own name. */
export function createLogger(level: string, name = 'mcpship'): Logger {
  return pino({ name, level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime });
}

export type { Logger };
