/**
 * Benchmark (issue 12): what capture costs per message in the database, and in the writer's own
 * process, by write window. A real CaptureWriter (api/gateway/capture.ts: journal, buffer,
 * insertMany batches into the indexed `messages` collection) is fed `tools/call` request/response
 * pairs at a steady rate, as a gateway under load would; the CPU of the MongoDB-wire server (the
 * embedded FerretDB) and of this process over the run, divided by the messages stored, is the cost.
 * CPU time, not wall clock, so that a loaded machine changes the figures little.
 *
 * Run: npx tsx bench/gateway-capture-db.ts   (or npm run bench -- capture-db); knobs:
 * BENCH_CAPTURE_RATE (messages per second, 400), BENCH_CAPTURE_SECONDS (15),
 * BENCH_CAPTURE_WINDOWS (flush windows in ms, `200,1000`).
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CaptureWriter } from '../api/gateway/capture.ts';
import { createLogger } from '../core/log.ts';
import { processCpuMs } from './lib/calculator.ts';
import { exchange } from './lib/sample-exchange.ts';
import { standaloneFerretdb } from './lib/standalone-ferretdb.ts';
import { heading, machineLine, table } from './lib/common.ts';

const RATE = Number(process.env.BENCH_CAPTURE_RATE ?? 400);
const SECONDS = Number(process.env.BENCH_CAPTURE_SECONDS ?? 15);
const WINDOWS = (process.env.BENCH_CAPTURE_WINDOWS ?? '200,1000').split(',').map(Number);
/** Messages are handed over in ticks of this length (two per call: request and response). */
const TICK_MS = 20;

const log = createLogger('warn', 'bench');

interface Row {
  windowMs: number;
  messages: number;
  batches: number;
  dbUsPerMessage: number;
  writerUsPerMessage: number;
}

async function main(): Promise<void> {
  const machine = await machineLine();
  const { stateDir, store, pid: dbPid, cleanup } = await standaloneFerretdb('capture-db');
  try {
    const rows: Row[] = [];
    for (const windowMs of WINDOWS) {
      // Counts the insertMany calls the writer makes, to show the batch size a window gives.
      let batches = 0;
      const messages = new Proxy(store.messages, {
        get(target, prop) {
          const value = Reflect.get(target, prop, target) as unknown;
          if (typeof value !== 'function') return value;
          if (prop === 'insertMany') batches += 1;
          return value.bind(target);
        },
      });
      const writer = new CaptureWriter({ messages, spillDir: path.join(stateDir, `spill-${windowMs}`), flushIntervalMs: windowMs, log });
      await writer.flush(); // the unique index, made before the clock starts
      batches = 0;
      const sessions = Array.from({ length: 10 }, () => randomUUID());
      const db0 = await processCpuMs(dbPid);
      const own0 = process.cpuUsage();
      const perTick = (RATE * TICK_MS) / 1000 / 2;
      let i = 0;
      for (let t = 0; t < (SECONDS * 1000) / TICK_MS; t++) {
        for (let k = 0; k < perTick; k++, i++) {
          const ex = exchange(i, sessions[i % sessions.length]!);
          writer.message(ex.ctx, 'client_to_server', ex.request, 'json', ex.requestRaw.length, ex.requestRaw);
          writer.message(ex.ctx, 'server_to_client', ex.response, 'json', ex.responseRaw.length, ex.responseRaw);
        }
        await sleep(TICK_MS);
      }
      await writer.close();
      const own = process.cpuUsage(own0);
      const dbMs = (await processCpuMs(dbPid)) - db0;
      const c = writer.counters;
      const stored = c.written + c.replayed;
      if (c.dropped > 0 || stored !== c.captured) console.error(`window ${windowMs} ms: captured ${c.captured}, stored ${stored}, dropped ${c.dropped}`);
      // The writer's process also made the messages; that is a small share of its figure.
      rows.push({ windowMs, messages: stored, batches, dbUsPerMessage: (dbMs / stored) * 1000, writerUsPerMessage: ((own.user + own.system) / 1000 / stored) * 1000 });
      await store.messages.deleteMany({});
    }
    heading(`capture in the database: ${RATE} messages/s for ${SECONDS} s per window, a real CaptureWriter into the indexed messages collection`);
    console.log(machine);
    console.log(
      table(
        ['write window', 'messages', 'insertMany calls', 'messages per batch', 'FerretDB CPU per message', 'writer CPU per message'],
        rows.map((r) => [`${r.windowMs} ms`, String(r.messages), String(r.batches), (r.messages / Math.max(1, r.batches)).toFixed(0), `${r.dbUsPerMessage.toFixed(0)} µs`, `${r.writerUsPerMessage.toFixed(0)} µs`]),
      ),
    );
  } finally {
    await cleanup();
  }
}

await main();
