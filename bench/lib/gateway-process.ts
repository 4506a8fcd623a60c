/**
 * A gateway (startApi, as `mcpship up` runs it) in a process of its own, for benchmarks that
 * measure the gateway's own CPU and memory: nothing else runs on its event loop, so
 * process.cpuUsage() and memoryUsage() here are the gateway's alone.
 *
 *   fork('bench/lib/gateway-process.ts', [JSON.stringify({ config, mongoUri, temporalAddress })],
 *        { execArgv: ['--import', 'tsx'] })
 *
 * Over IPC it sends `{ url }` once listening; it answers `'stats'` with its CPU and memory and
 * `'flush'` with the capture writer's counters after flushing (all of them in `counters`); `'close'` closes and exits.
 */
import type { CaptureCounters } from '../../api/gateway/capture.ts';
import { startApi } from '../../api/server.ts';
import type { Config } from '../../core/config.ts';
import { EventStore } from '../../core/events.ts';
import { createLogger } from '../../core/log.ts';
import { connectStore } from '../../core/mongo.ts';
import { profilerMessage } from './child-profiler.ts';
import { ownStats, type GatewayStats } from './own-stats.ts';

export type { GatewayStats } from './own-stats.ts';

export interface GatewayProcessArgs {
  config: Config;
  mongoUri: string;
  temporalAddress: string;
}

export type GatewayReply = { kind: 'ready'; url: string } | { kind: 'stats'; stats: GatewayStats } | { kind: 'flushed'; written: number; captured: number; dropped: number; counters?: CaptureCounters };

const args = JSON.parse(process.argv[2] ?? '{}') as GatewayProcessArgs;
const send = (reply: GatewayReply) => process.send!(reply);
const log = createLogger('warn', 'bench-gateway');
const store = await connectStore(args.mongoUri, args.config.mongo.database);
const api = await startApi({ config: args.config, store, events: new EventStore(store), log, temporalAddress: args.temporalAddress });

process.on('message', (message: string) => {
  if (profilerMessage(message)) return;
  if (message === 'stats') send({ kind: 'stats', stats: ownStats() });
  else if (message === 'gc-stats') {
    // Memory held, not garbage not yet collected (available with --expose-gc).
    (globalThis as { gc?: () => void }).gc?.();
    send({ kind: 'stats', stats: ownStats() });
  } else if (message === 'flush') {
    void (async () => {
      const capture = api.traffic.capture;
      for (let i = 0; capture && i < 120 && (capture.counters.buffered > 0 || capture.counters.spillPending > 0); i++) {
        await capture.flush();
        if (capture.counters.spillPending > 0) await new Promise((r) => setTimeout(r, 500));
      }
      const c = capture?.counters;
      send({ kind: 'flushed', written: c?.written ?? 0, captured: c?.captured ?? 0, dropped: c?.dropped ?? 0, ...(c ? { counters: c } : {}) });
    })();
  } else if (message === 'close') {
    void (async () => {
      await api.close().catch(() => {});
      await store.close().catch(() => {});
      process.exit(0);
    })();
  }
});
// The parent is gone: nothing is left to measure for.
process.on('disconnect', () => process.exit(0));
send({ kind: 'ready', url: api.url });
