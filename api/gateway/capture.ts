/**
 * Message capture: every JSON-RPC message through the gateway becomes a MessageDoc holding its
 * exact text (capture/shape.ts). On the request path the proxy pays for shaping the document and
 * one synchronous append to the journal (capture/journal.ts), so a process kill loses nothing it
 * forwarded. Writing to MongoDB happens in batches off the request path, from a bounded buffer;
 * while MongoDB is slow or away the buffer is let go and the journal is the spill, replayed when
 * it is back (and by the next writer after a crash). A message MongoDB refuses is quarantined
 * alone (capture/store-batch.ts); a message that is lost anyway is counted and reported as an
 * event (capture/drops.ts). messageId is unique-indexed, so a replay that meets an already stored
 * message is a no-op.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Collection } from 'mongodb';
import type { Config } from '../../core/config.ts';
import type { MessageDirection, MessageDoc } from '../../core/documents.ts';
import { DropReporter, type DropSink } from './capture/drops.ts';
import { compileRedactPaths, type RedactPaths } from './capture/redact.ts';
import { RequestClock } from './capture/request-clock.ts';
import { messageKind, shapeMessage, toolNameOf } from './capture/shape.ts';
import { docBytes, Journal, type JournalEntry } from './capture/journal.ts';
import { SpillReporter } from './capture/spill-events.ts';
import { quarantineRecord, storeBatch } from './capture/store-batch.ts';
import type { ExchangeContext, JsonRpcMessage, TrafficObserver } from './traffic.ts';

export interface CaptureWriterOptions {
  messages: Collection<MessageDoc>;
  /** The spill folder, e.g. `<stateDir>/capture-spill`. */
  spillDir: string;
  maxPayloadBytes?: number;
  /** Dotted paths blanked in every message, both ways, besides the defaults (capture/redact.ts). */
  redact?: readonly string[];
  /** Documents per insertMany. */
  batchSize?: number;
  /**
   * How often the buffer is written when it does not fill a batch first. Longer windows mean
   * larger insertMany batches, which FerretDB stores for less per message (docs/performance.md);
   * the journal, not the window, is what keeps messages safe from a crash.
   */
  flushIntervalMs?: number;
  /** Bounds of the in-memory buffer; beyond them the buffer is let go to the spill (the journal keeps it). */
  maxBufferedMessages?: number;
  maxBufferedBytes?: number;
  /** After a failed write, how long to spill without trying MongoDB again. */
  retryMs?: number;
  /** A write that takes longer counts as failed (its documents are spilled, replay dedupes). */
  writeTimeoutMs?: number;
  /** A journal file is closed and a new one begun beyond this size (a crash replays at most a few). */
  spillSegmentBytes?: number;
  /** All journal files together; beyond this messages are dropped (and reported) once MongoDB cannot take them. */
  spillMaxBytes?: number;
  /** A spill episode ends (`capture.recovered`) once the spill has stayed empty this long (capture/spill-events.ts). */
  spillSettleMs?: number;
  /** Where drops and spill episodes are reported as events (the event store). */
  events?: DropSink;
  log?: { warn(obj: object, msg: string): void; info?(obj: object, msg: string): void };
}

export interface CaptureCounters {
  /** Messages handed to the writer. */
  captured: number;
  /** Stored in MongoDB straight from the buffer. */
  written: number;
  /** Appended to the journal (every message, unless its write failed or the journal was full). */
  journaled: number;
  /** Waited in the spill: journaled while MongoDB was away or the buffer full, or let go from the buffer. */
  spilled: number;
  /** Stored in MongoDB from the spill (including already stored ones met again). */
  replayed: number;
  /** Stored as quarantine records (MongoDB refused them as shaped, or they could not be shaped). */
  quarantined: number;
  /** Lost: neither in MongoDB nor in the journal (full or failing), a quarantine record was refused, a journal line was torn. */
  dropped: number;
  /** In memory now. */
  buffered: number;
  /** In the spill now, waiting for MongoDB. */
  spillPending: number;
  /** Bytes of journal files on disk now. */
  spillBytes: number;
  /** Found in spill files a dead process left behind (counted again in replayed once stored). */
  adopted: number;
}

interface Buffered {
  doc: MessageDoc;
  bytes: number;
  /** Where the journal holds it; none if its write failed (then it is only here). */
  entry: JournalEntry | undefined;
}

export class CaptureWriter implements TrafficObserver {
  private readonly opts: Required<Omit<CaptureWriterOptions, 'log' | 'events'>> & Pick<CaptureWriterOptions, 'log'>;
  private readonly redactPaths: RedactPaths;
  private readonly journal: Journal;
  private readonly drops: DropReporter;
  private readonly spills: SpillReporter;
  private readonly clock = new RequestClock();
  private buffer: Buffered[] = [];
  private bufferBytes = 0;
  private readonly counts = { captured: 0, written: 0, replayed: 0, quarantined: 0, dropped: 0 };
  private readonly timer: NodeJS.Timeout;
  private chain: Promise<void> = Promise.resolve();
  private kickQueued = false;
  private downUntil = 0;
  private indexReady: Promise<unknown> | undefined;
  private closed = false;

  constructor(options: CaptureWriterOptions) {
    this.opts = {
      maxPayloadBytes: 64 * 1024,
      redact: [],
      batchSize: 500,
      flushIntervalMs: 1_000,
      maxBufferedMessages: 10_000,
      maxBufferedBytes: 32 * 1024 * 1024,
      retryMs: 1_000,
      writeTimeoutMs: 30_000,
      spillSegmentBytes: 1024 * 1024,
      spillMaxBytes: 512 * 1024 * 1024,
      spillSettleMs: 5_000,
      ...options,
    };
    this.redactPaths = compileRedactPaths(this.opts.redact);
    this.drops = new DropReporter(options.events, this.opts.log);
    const writerId = randomUUID().slice(0, 8);
    this.spills = new SpillReporter(options.events, writerId, this.opts.spillSettleMs, this.opts.log);
    this.journal = new Journal({
      dir: this.opts.spillDir,
      writerId,
      segmentBytes: this.opts.spillSegmentBytes,
      maxBytes: this.opts.spillMaxBytes,
      ...(this.opts.log ? { log: this.opts.log } : {}),
    });
    this.timer = setInterval(() => {
      this.kick();
      this.watchSpill();
    }, this.opts.flushIntervalMs);
    this.timer.unref();
    if (this.journal.hasPending) this.kick();
  }

  /** A writer with the gateway's capture settings; spill under <stateDir>/capture-spill. */
  static fromConfig(config: Config, messages: Collection<MessageDoc>, deps: Pick<CaptureWriterOptions, 'log' | 'events'> = {}): CaptureWriter {
    const { maxPayloadBytes, redact, spillMaxBytes } = config.gateway.capture;
    return new CaptureWriter({ messages, spillDir: path.join(config.stateDir, 'capture-spill'), maxPayloadBytes, redact, spillMaxBytes, ...deps });
  }

  get counters(): CaptureCounters {
    return {
      ...this.counts,
      journaled: this.journal.journaled,
      spilled: this.journal.spilled,
      buffered: this.buffer.length,
      spillPending: this.journal.pending,
      spillBytes: this.journal.diskBytes,
      adopted: this.journal.adopted,
      dropped: this.counts.dropped + this.journal.unreadable,
    };
  }

  get spillDir(): string {
    return this.journal.dir;
  }

  message(ctx: ExchangeContext, direction: MessageDirection, msg: JsonRpcMessage, transport: 'json' | 'sse', size: number, raw?: string): void {
    this.counts.captured += 1;
    const doc = this.toDoc(ctx, direction, msg, transport, size, raw);
    if (this.closed || this.downUntil !== 0) {
      this.toSpill(doc); // MongoDB away: straight to the spill, replayed when it is back
      return;
    }
    const bytes = docBytes(doc);
    // Full (MongoDB slow): let the buffer go rather than grow; the journal has it all.
    if (this.buffer.length >= this.opts.maxBufferedMessages || this.bufferBytes + bytes > this.opts.maxBufferedBytes) this.spillBuffer();
    const entry = this.journal.append(doc, 'memory');
    this.buffer.push({ doc, bytes, entry: typeof entry === 'string' ? undefined : entry });
    this.bufferBytes += bytes;
    if (this.buffer.length >= this.opts.batchSize) this.kick();
  }

  // Capture keeps no per-exchange state beyond the open requests, which the clock lets go with the exchange.
  exchangeEnd(): void {}

  /** The document for a message; one that cannot be shaped becomes a quarantine record saying why. */
  private toDoc(ctx: ExchangeContext, direction: MessageDirection, msg: JsonRpcMessage, transport: 'json' | 'sse', size: number, raw?: string): MessageDoc {
    const now = performance.now();
    // A client's message arrived with its request, at startedAt, however late the gateway reports
    // it (it waits for the session id); a server's message arrives as it is reported.
    const arrived = direction === 'client_to_server' && Number.isFinite(ctx.startedAt) && ctx.startedAt <= now ? ctx.startedAt : now;
    const at = new Date(Date.now() - (now - arrived));
    const kind = messageKind(msg);
    let latencyMs: number | undefined;
    let toolName: string | undefined;
    if ('id' in msg && kind === 'request') this.clock.request(ctx, direction, msg.id, arrived, toolNameOf(msg));
    else if ('id' in msg && (kind === 'response' || kind === 'error')) {
      const open = this.clock.answer(ctx, direction, msg.id);
      if (open) {
        latencyMs = Math.max(0, arrived - open.at);
        toolName = open.toolName;
      }
    }
    const input = { ctx, direction, msg, transport, size, at, ...(raw !== undefined ? { raw } : {}), ...(latencyMs !== undefined ? { latencyMs } : {}), ...(toolName !== undefined ? { toolName } : {}) };
    try {
      return shapeMessage(input, { redact: this.redactPaths, maxPayloadBytes: this.opts.maxPayloadBytes });
    } catch (err) {
      // No exact text and too deep to serialise (or to redact): keep the facts and the reason.
      this.opts.log?.warn({ err, service: ctx.service }, 'a captured message could not be serialised: quarantined');
      const facts: MessageDoc = {
        messageId: randomUUID(),
        service: ctx.service,
        version: ctx.version,
        ...(ctx.sessionId ? { sessionId: ctx.sessionId } : {}),
        direction,
        kind,
        raw: '',
        truncated: true,
        redacted: false,
        size: Number.isFinite(size) && size >= 0 ? size : 0,
        at,
        transport,
      };
      return quarantineRecord(facts, `message could not be serialised: ${(err as Error).message}`);
    }
  }

  private dropped(docs: readonly MessageDoc[], reason: string, err?: unknown): void {
    this.counts.dropped += docs.length;
    const perService = new Map<string, number>();
    for (const d of docs) perService.set(d.service, (perService.get(d.service) ?? 0) + 1);
    for (const [service, n] of perService) this.drops.note(service, n, reason, err);
  }

  private toSpill(doc: MessageDoc): void {
    const entry = this.journal.append(doc, 'spill');
    if (typeof entry === 'string') this.dropped([doc], entry);
  }

  /** Lets go of messages held in memory: the journal's copies become the spill. */
  private spillBuffer(entries: readonly Buffered[] = []): void {
    const all = entries.length > 0 ? [...entries, ...this.buffer] : this.buffer;
    this.buffer = [];
    this.bufferBytes = 0;
    this.journal.toSpill();
    for (const b of all) if (!b.entry) this.toSpill(b.doc); // its journal write failed: one more try
  }

  private take(n: number): Buffered[] {
    const batch = this.buffer.splice(0, n);
    for (const b of batch) this.bufferBytes -= b.bytes;
    return batch;
  }

  /**
   * Stores docs, quarantining what MongoDB refuses. Returns what could not be written because
   * MongoDB is unreachable (empty when all is stored).
   */
  private async insert(docs: MessageDoc[], counter: 'written' | 'replayed'): Promise<MessageDoc[]> {
    try {
      this.indexReady ??= this.opts.messages.createIndex({ messageId: 1 }, { unique: true }).catch((err: unknown) => {
        this.indexReady = undefined;
        throw err;
      });
      await this.indexReady;
    } catch {
      return docs; // without the unique index a replay could duplicate: wait for MongoDB
    }
    const result = await storeBatch(this.opts.messages, docs, {
      timeoutMs: this.opts.writeTimeoutMs,
      onQuarantine: (doc, reason) => this.opts.log?.warn({ service: doc.service, messageId: doc.messageId, reason }, 'MongoDB refused a captured message: quarantined'),
    });
    this.counts[counter] += result.stored;
    this.counts.quarantined += result.quarantined;
    for (const { doc, reason } of result.dropped) this.dropped([doc], reason);
    return result.unwritten;
  }

  private markDown(): void {
    if (this.downUntil === 0) this.opts.log?.warn({ dir: this.journal.dir }, 'MongoDB unavailable: capture spills to disk');
    this.downUntil = Date.now() + this.opts.retryMs;
  }

  private markUp(): void {
    if (this.downUntil !== 0) this.opts.log?.info?.({}, 'MongoDB back: capture replays its spill');
    this.downUntil = 0;
  }

  /** One pass: buffer → MongoDB (or spill, while it is away), then the spill → MongoDB. */
  private async cycle(force: boolean): Promise<void> {
    // Whatever MongoDB's state for messages: the event store may be elsewhere, and a report that fails waits.
    void this.drops.report();
    if (!force && this.downUntil !== 0 && Date.now() < this.downUntil) {
      this.spillBuffer(); // keep memory free while waiting to retry
      return;
    }
    this.journal.rotate();
    // Only what is here now: under steady traffic a flush must still come to an end.
    for (let left = this.buffer.length; left > 0 && this.buffer.length > 0; left -= this.opts.batchSize) {
      const batch = this.take(Math.min(left, this.opts.batchSize));
      const unwritten = new Set(await this.insert(batch.map((b) => b.doc), 'written'));
      for (const b of batch) if (b.entry && !unwritten.has(b.doc)) this.journal.stored(b.entry);
      if (unwritten.size > 0) {
        this.spillBuffer(batch.filter((b) => unwritten.has(b.doc)));
        this.markDown();
        return;
      }
    }
    if (this.journal.hasPending) {
      const stored = await this.journal.replay(this.opts.batchSize, async (docs) => (await this.insert(docs, 'replayed')).length === 0);
      if (!stored) {
        this.markDown();
        return;
      }
    }
    this.markUp();
  }

  /** Off the request path, on the timer: a spill is reported once per episode, never per message. */
  private watchSpill(): void {
    this.spills.observe(this.journal.hasPending, this.counters, () =>
      this.downUntil !== 0 ? 'MongoDB unavailable' : this.journal.adopted > 0 && this.journal.spilled === 0 ? 'spill left by a stopped gateway' : 'MongoDB slower than the traffic (buffer full)',
    );
    if (this.spills.waiting) void this.spills.report();
  }

  private kick(): void {
    if (this.kickQueued) return;
    if (this.buffer.length === 0 && !(this.journal.hasPending && Date.now() >= this.downUntil)) return;
    this.kickQueued = true;
    this.chain = this.chain
      .then(() => {
        this.kickQueued = false;
        return this.cycle(false);
      })
      .catch((err: unknown) => this.opts.log?.warn({ err }, 'capture write cycle failed'));
  }

  /**
   * Writes everything captured so far into MongoDB if it answers (the spill too); else it stays
   * in the spill, and nothing is left in memory when it resolves.
   */
  flush(): Promise<void> {
    const run = this.chain.then(() => this.cycle(true));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Flushes, stops the timer, and leaves what MongoDB could not take to the next writer. */
  async close(): Promise<void> {
    if (this.closed) return;
    clearInterval(this.timer);
    await this.flush();
    if (this.downUntil === 0) await this.spills.report();
    this.closed = true;
    await this.journal.release();
  }
}
