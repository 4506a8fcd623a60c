/**
 * Message capture: every JSON-RPC message through the gateway becomes a MessageDoc. The proxy
 * only pays for shaping the document; writing happens in batches off the request path, through a
 * bounded buffer that spills to local JSONL files while MongoDB is away and is replayed when it is
 * back. messageId is unique-indexed, so a replay that meets an already stored message is a no-op.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { MongoBulkWriteError, type Collection } from 'mongodb';
import type { Config } from '../../core/config.ts';
import type { MessageDirection, MessageDoc } from '../../core/documents.ts';
import type { ExchangeContext, JsonRpcMessage, TrafficObserver } from './traffic.ts';

// ---------------------------------------------------------------------------------------------
// Shaping a message into a document (pure).

export const REDACTED = '[REDACTED]';

export function messageKind(msg: JsonRpcMessage): MessageDoc['kind'] {
  if (typeof msg.method === 'string') return 'id' in msg ? 'request' : 'notification';
  if (msg.error !== undefined && msg.error !== null) return 'error';
  return 'response';
}

/** A compiled redaction list: dotted paths, `*` standing for any key or array index. */
export type RedactPaths = readonly (readonly string[])[];

export function compileRedactPaths(paths: readonly string[]): RedactPaths {
  return paths.map((p) => p.split('.').filter(Boolean)).filter((segs) => segs.length > 0);
}

/**
 * The message with the value at each path replaced by REDACTED. Copy on write: the caller's
 * object (which the gateway may still forward) is never changed, and untouched branches are shared.
 */
export function redact<T>(msg: T, paths: RedactPaths): T {
  let out: unknown = msg;
  for (const segs of paths) out = redactAt(out, segs, 0);
  return out as T;
}

function redactAt(node: unknown, segs: readonly string[], i: number): unknown {
  if (node === null || typeof node !== 'object') return node;
  const seg = segs[i]!;
  const rec = node as Record<string, unknown>;
  const keys = seg === '*' ? Object.keys(rec) : Object.hasOwn(rec, seg) ? [seg] : [];
  let copy: Record<string, unknown> | undefined;
  for (const key of keys) {
    const child = rec[key];
    const next = i === segs.length - 1 ? REDACTED : redactAt(child, segs, i + 1);
    if (next !== child) {
      copy ??= (Array.isArray(node) ? [...node] : { ...rec }) as Record<string, unknown>;
      copy[key] = next;
    }
  }
  return copy ?? node;
}

/** The longest prefix of `text` that fits in maxBytes of UTF-8 without splitting a character. */
export function utf8Prefix(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let end = Math.max(0, maxBytes);
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // bytes[end] continues a character begun before the cut
  return bytes.subarray(0, end).toString('utf8');
}

/**
 * The payload to store: as is when its JSON fits in maxBytes, else the first maxBytes of its JSON
 * as a string (readable, and a replay tool can tell it is not a message from `truncated`).
 * `knownSize` (the wire size) saves serialising the common small message.
 */
export function capPayload(payload: unknown, maxBytes: number, knownSize?: number): { payload: unknown; truncated: boolean } {
  if (knownSize !== undefined && knownSize >= 0 && knownSize <= maxBytes) return { payload, truncated: false };
  const json = JSON.stringify(payload) ?? 'null';
  if (Buffer.byteLength(json, 'utf8') <= maxBytes) return { payload, truncated: false };
  return { payload: utf8Prefix(json, maxBytes), truncated: true };
}

// ---------------------------------------------------------------------------------------------
// The spill: append-only JSONL segments in one folder, one writer per file.

interface Segment {
  file: string;
  /** Documents in the file, when known. */
  count: number;
  /** Lines already stored in MongoDB, skipped if a replay is interrupted and resumed. */
  done: number;
}

/**
 * File names are `<pid>.<writerId>.<n>.jsonl`. A file whose pid is not alive (or 0: released by a
 * closed writer) is an orphan, adopted (renamed, so only one writer gets it) and replayed.
 */
class SpillLog {
  private current: (Segment & { fd: number; bytes: number }) | undefined;
  private readonly sealed: Segment[] = [];
  private seq = 0;
  /** Documents in the spill not yet replayed. */
  pending = 0;
  /** Documents found in orphaned files. */
  adopted = 0;
  /** Lines that could not be read back (a torn write from a crash). */
  unreadable = 0;

  constructor(
    readonly dir: string,
    private readonly writerId: string,
    private readonly segmentMaxBytes: number,
  ) {
    mkdirSync(dir, { recursive: true });
    this.adoptOrphans();
  }

  private name(pid: number, tag: string): string {
    return path.join(this.dir, `${pid}.${this.writerId}.${tag}.jsonl`);
  }

  /** Synchronous, so that a message handed over is on disk before the call returns. */
  append(docs: readonly MessageDoc[]): void {
    if (docs.length === 0) return;
    if (!this.current) {
      const file = this.name(process.pid, String(this.seq++));
      this.current = { file, fd: openSync(file, 'a'), bytes: 0, count: 0, done: 0 };
    }
    const text = docs.map((d) => JSON.stringify(d)).join('\n') + '\n';
    writeSync(this.current.fd, text);
    this.current.bytes += Buffer.byteLength(text);
    this.current.count += docs.length;
    this.pending += docs.length;
    if (this.current.bytes >= this.segmentMaxBytes) this.seal();
  }

  /** Closes the file being written, so that a replay reads a file nobody appends to. */
  seal(): void {
    if (!this.current) return;
    closeSync(this.current.fd);
    const { file, count, done } = this.current;
    this.sealed.push({ file, count, done });
    this.current = undefined;
  }

  get hasPending(): boolean {
    return this.sealed.length > 0 || (this.current?.count ?? 0) > 0;
  }

  /**
   * Stores every sealed segment through `store`, oldest first, deleting each once it is stored.
   * Stops (returns false) at the first batch `store` could not write; a later call resumes there.
   */
  async replay(batchSize: number, store: (docs: MessageDoc[]) => Promise<boolean>): Promise<boolean> {
    this.seal();
    while (this.sealed.length > 0) {
      const segment = this.sealed[0]!;
      const lines = (await readFile(segment.file, 'utf8')).split('\n').filter((l) => l.length > 0);
      for (let i = segment.done; i < lines.length; i += batchSize) {
        const chunk = lines.slice(i, i + batchSize);
        const docs: MessageDoc[] = [];
        for (const line of chunk) {
          try {
            const doc = JSON.parse(line) as MessageDoc;
            doc.at = new Date(doc.at);
            docs.push(doc);
          } catch {
            this.unreadable += 1;
          }
        }
        if (docs.length > 0 && !(await store(docs))) return false;
        segment.done = i + chunk.length;
        this.pending -= chunk.length;
      }
      this.pending -= Math.max(0, segment.count - lines.length); // a torn tail counted but never read
      await unlink(segment.file).catch(() => undefined);
      this.sealed.shift();
    }
    return true;
  }

  /** Hands the remaining files to whoever starts next (pid 0 reads as "not alive"). */
  release(): void {
    this.seal();
    for (const segment of this.sealed) {
      if (segment.done > 0) continue; // a half-replayed file stays with its done-mark in this process
      try {
        renameSync(segment.file, this.name(0, `r${this.seq++}`));
      } catch {
        // Left under our pid: still adopted once this process is gone.
      }
    }
  }

  private adoptOrphans(): void {
    for (const entry of readdirSync(this.dir)) {
      const match = /^(\d+)\.[^.]+\.[^.]+\.jsonl$/.exec(entry);
      if (!match || isAlive(Number(match[1]))) continue;
      const file = this.name(process.pid, `a${this.seq++}`);
      try {
        renameSync(path.join(this.dir, entry), file);
      } catch {
        continue; // another writer adopted it first
      }
      const count = readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0).length;
      this.sealed.push({ file, count, done: 0 });
      this.pending += count;
      this.adopted += count;
    }
  }
}

function isAlive(pid: number): boolean {
  if (pid === 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// ---------------------------------------------------------------------------------------------
// The writer.

export interface CaptureWriterOptions {
  messages: Collection<MessageDoc>;
  /** The spill folder, e.g. `<stateDir>/capture-spill`. */
  spillDir: string;
  maxPayloadBytes?: number;
  /** Dotted paths blanked in every message, both ways. */
  redact?: readonly string[];
  /** Documents per insertMany. */
  batchSize?: number;
  /** How often the buffer is written when it does not fill a batch first. */
  flushIntervalMs?: number;
  /** Bounds of the in-memory buffer; beyond them messages go straight to the spill. */
  maxBufferedMessages?: number;
  maxBufferedBytes?: number;
  /** After a failed write, how long to spill without trying MongoDB again. */
  retryMs?: number;
  /** A write that takes longer counts as failed (its documents are spilled, replay dedupes). */
  writeTimeoutMs?: number;
  /** A spill file is closed and a new one begun beyond this size. */
  spillSegmentBytes?: number;
  log?: { warn(obj: object, msg: string): void; info?(obj: object, msg: string): void };
}

export interface CaptureCounters {
  /** Messages handed to the writer. */
  captured: number;
  /** Stored in MongoDB straight from the buffer. */
  written: number;
  /** Put in the spill file. */
  spilled: number;
  /** Stored in MongoDB from the spill file (including already stored ones met again). */
  replayed: number;
  /** Lost: the spill could not be written, MongoDB rejected a document, or a spill line was torn. */
  dropped: number;
  /** In memory now. */
  buffered: number;
  /** In spill files now, waiting for MongoDB. */
  spillPending: number;
  /** Found in spill files a dead process left behind (counted again in replayed once stored). */
  adopted: number;
}

interface Buffered {
  doc: MessageDoc;
  bytes: number;
}

/** Per-document overhead beyond the payload, for the buffer's byte bound. */
const DOC_OVERHEAD_BYTES = 256;

export class CaptureWriter implements TrafficObserver {
  private readonly opts: Required<Omit<CaptureWriterOptions, 'log'>> & Pick<CaptureWriterOptions, 'log'>;
  private readonly redactPaths: RedactPaths;
  private readonly spill: SpillLog;
  private buffer: Buffered[] = [];
  private bufferBytes = 0;
  private readonly counts = { captured: 0, written: 0, spilled: 0, replayed: 0, dropped: 0 };
  /** Requests waiting for their response, per exchange: the usual case, and the only one without a session. */
  private readonly openByExchange = new WeakMap<ExchangeContext, Map<string, number>>();
  /** Requests per session, for a response that comes on another stream (e.g. the GET SSE stream). */
  private readonly openBySession = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private chain: Promise<void> = Promise.resolve();
  private kickQueued = false;
  private downUntil = 0;
  private indexReady: Promise<unknown> | undefined;
  private closed = false;

  static readonly MAX_OPEN_REQUESTS = 10_000;

  constructor(options: CaptureWriterOptions) {
    this.opts = {
      maxPayloadBytes: 64 * 1024,
      redact: [],
      batchSize: 500,
      flushIntervalMs: 200,
      maxBufferedMessages: 10_000,
      maxBufferedBytes: 32 * 1024 * 1024,
      retryMs: 1_000,
      writeTimeoutMs: 30_000,
      spillSegmentBytes: 8 * 1024 * 1024,
      ...options,
    };
    this.redactPaths = compileRedactPaths(this.opts.redact);
    this.spill = new SpillLog(this.opts.spillDir, randomUUID().slice(0, 8), this.opts.spillSegmentBytes);
    this.timer = setInterval(() => this.kick(), this.opts.flushIntervalMs);
    this.timer.unref();
    if (this.spill.hasPending) this.kick();
  }

  /** A writer with the gateway's capture settings; spill under <stateDir>/capture-spill. */
  static fromConfig(config: Config, messages: Collection<MessageDoc>, log?: CaptureWriterOptions['log']): CaptureWriter {
    const { maxPayloadBytes, redact } = config.gateway.capture;
    return new CaptureWriter({ messages, spillDir: path.join(config.stateDir, 'capture-spill'), maxPayloadBytes, redact, ...(log ? { log } : {}) });
  }

  get counters(): CaptureCounters {
    return {
      ...this.counts,
      buffered: this.buffer.length,
      spillPending: this.spill.pending,
      adopted: this.spill.adopted,
      dropped: this.counts.dropped + this.spill.unreadable,
    };
  }

  get spillDir(): string {
    return this.spill.dir;
  }

  message(ctx: ExchangeContext, direction: MessageDirection, msg: JsonRpcMessage, transport: 'json' | 'sse', size: number): void {
    this.counts.captured += 1;
    try {
      const doc = this.toDoc(ctx, direction, msg, transport, size);
      const bytes = Math.min(doc.size, this.opts.maxPayloadBytes) + DOC_OVERHEAD_BYTES;
      if (this.closed || this.buffer.length >= this.opts.maxBufferedMessages || this.bufferBytes + bytes > this.opts.maxBufferedBytes) {
        this.spillDocs([doc]); // full (MongoDB slow or away): to disk now rather than grow or lose
        return;
      }
      this.buffer.push({ doc, bytes });
      this.bufferBytes += bytes;
      if (this.buffer.length >= this.opts.batchSize) this.kick();
    } catch (err) {
      this.counts.dropped += 1;
      this.opts.log?.warn({ err }, 'a message could not be captured');
    }
  }

  // Capture keeps no per-exchange state beyond the open requests, which the WeakMap lets go.
  exchangeEnd(): void {}

  private toDoc(ctx: ExchangeContext, direction: MessageDirection, msg: JsonRpcMessage, transport: 'json' | 'sse', size: number): MessageDoc {
    const kind = messageKind(msg);
    const hasId = 'id' in msg;
    const rpcId = hasId ? (msg.id as string | number | null) : undefined;
    const now = performance.now();
    // A client's message arrived with its request, at startedAt, however late the gateway reports
    // it (it waits for the session id); a server's message arrives as it is reported.
    const arrived = direction === 'client_to_server' && Number.isFinite(ctx.startedAt) && ctx.startedAt <= now ? ctx.startedAt : now;
    const latencyMs = hasId ? this.matchLatency(ctx, direction, kind, rpcId, arrived) : undefined;
    const wireSize = Number.isFinite(size) && size >= 0 ? size : undefined;
    const { payload, truncated } = capPayload(redact(msg, this.redactPaths), this.opts.maxPayloadBytes, wireSize);
    return {
      messageId: randomUUID(),
      service: ctx.service,
      version: ctx.version,
      ...(ctx.sessionId ? { sessionId: ctx.sessionId } : {}),
      direction,
      kind,
      ...(typeof msg.method === 'string' ? { method: msg.method } : {}),
      ...(hasId ? { rpcId } : {}),
      payload,
      truncated,
      size: wireSize ?? Buffer.byteLength(JSON.stringify(msg) ?? ''),
      at: new Date(Date.now() - (now - arrived)),
      ...(latencyMs !== undefined ? { latencyMs } : {}),
      transport,
    };
  }

  /**
   * Remembers a request's time, or returns a response's latency. Requests go both ways (a server
   * asks the client for sampling), so the key carries the request's direction.
   */
  private matchLatency(ctx: ExchangeContext, direction: MessageDirection, kind: MessageDoc['kind'], rpcId: unknown, now: number): number | undefined {
    if (kind === 'request') {
      const key = `${direction}\u0000${JSON.stringify(rpcId)}`;
      let open = this.openByExchange.get(ctx);
      if (!open) this.openByExchange.set(ctx, (open = new Map()));
      open.set(key, now);
      if (ctx.sessionId) {
        this.openBySession.set(`${ctx.service}\u0000${ctx.sessionId}\u0000${key}`, now);
        if (this.openBySession.size > CaptureWriter.MAX_OPEN_REQUESTS) {
          this.openBySession.delete(this.openBySession.keys().next().value as string); // never answered: forget the oldest
        }
      }
      return undefined;
    }
    if (kind !== 'response' && kind !== 'error') return undefined;
    const requestDirection: MessageDirection = direction === 'server_to_client' ? 'client_to_server' : 'server_to_client';
    const key = `${requestDirection}\u0000${JSON.stringify(rpcId)}`;
    const open = this.openByExchange.get(ctx);
    let start = open?.get(key);
    open?.delete(key);
    if (ctx.sessionId) {
      const sessionKey = `${ctx.service}\u0000${ctx.sessionId}\u0000${key}`;
      start ??= this.openBySession.get(sessionKey);
      this.openBySession.delete(sessionKey);
    }
    return start === undefined ? undefined : Math.max(0, now - start);
  }

  private spillDocs(docs: MessageDoc[]): void {
    try {
      this.spill.append(docs);
      this.counts.spilled += docs.length;
    } catch (err) {
      this.counts.dropped += docs.length;
      this.opts.log?.warn({ err, count: docs.length, dir: this.spill.dir }, 'capture spill failed: messages lost');
    }
  }

  private spillBuffer(): void {
    if (this.buffer.length === 0) return;
    const all = this.buffer;
    this.buffer = [];
    this.bufferBytes = 0;
    this.spillDocs(all.map((b) => b.doc));
  }

  private take(n: number): MessageDoc[] {
    const batch = this.buffer.splice(0, n);
    for (const b of batch) this.bufferBytes -= b.bytes;
    return batch.map((b) => b.doc);
  }

  /**
   * insertMany, unordered. True when every document is now stored: a duplicate key means an
   * earlier attempt got it in. False when MongoDB did not answer (the caller spills or retries).
   */
  private async insert(docs: MessageDoc[], counter: 'written' | 'replayed'): Promise<boolean> {
    try {
      this.indexReady ??= this.opts.messages.createIndex({ messageId: 1 }, { unique: true }).catch((err: unknown) => {
        this.indexReady = undefined;
        throw err;
      });
      await this.indexReady;
      // Copies: the driver adds _id to what it is given, and a spilled copy must not carry one.
      await withTimeout(
        this.opts.messages.insertMany(
          docs.map((d) => ({ ...d })),
          { ordered: false },
        ),
        this.opts.writeTimeoutMs,
      );
      this.counts[counter] += docs.length;
      return true;
    } catch (err) {
      if (!(err instanceof MongoBulkWriteError)) return false;
      const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
      if (errors.length === 0) return false;
      const rejected = errors.filter((e) => e.code !== 11000);
      if (rejected.length > 0) {
        this.opts.log?.warn({ count: rejected.length, code: rejected[0]?.code, message: rejected[0]?.errmsg }, 'MongoDB rejected captured messages');
      }
      this.counts[counter] += docs.length - rejected.length;
      this.counts.dropped += rejected.length;
      return true;
    }
  }

  private markDown(): void {
    if (this.downUntil === 0) this.opts.log?.warn({ dir: this.spill.dir }, 'MongoDB unavailable: capture spills to disk');
    this.downUntil = Date.now() + this.opts.retryMs;
  }

  private markUp(): void {
    if (this.downUntil !== 0) this.opts.log?.info?.({}, 'MongoDB back: capture replays its spill');
    this.downUntil = 0;
  }

  /** One pass: buffer → MongoDB (or spill, while it is away), then the spill → MongoDB. */
  private async cycle(force: boolean): Promise<void> {
    if (!force && this.downUntil !== 0 && Date.now() < this.downUntil) {
      this.spillBuffer(); // keep memory free while waiting to retry
      return;
    }
    // Only what is here now: under steady traffic a flush must still come to an end.
    for (let left = this.buffer.length; left > 0 && this.buffer.length > 0; left -= this.opts.batchSize) {
      const batch = this.take(Math.min(left, this.opts.batchSize));
      if (!(await this.insert(batch, 'written'))) {
        this.spillDocs(batch);
        this.spillBuffer();
        this.markDown();
        return;
      }
    }
    if (this.spill.hasPending) {
      if (!(await this.spill.replay(this.opts.batchSize, (docs) => this.insert(docs, 'replayed')))) {
        this.markDown();
        return;
      }
    }
    this.markUp();
  }

  private kick(): void {
    if (this.kickQueued) return;
    if (this.buffer.length === 0 && !(this.spill.hasPending && Date.now() >= this.downUntil)) return;
    this.kickQueued = true;
    this.chain = this.chain
      .then(() => {
        this.kickQueued = false;
        return this.cycle(false);
      })
      .catch((err: unknown) => this.opts.log?.warn({ err }, 'capture write cycle failed'));
  }

  /**
   * Writes everything captured so far: into MongoDB if it answers (the spill too), else into the
   * spill file. Either way nothing is left only in memory when it resolves.
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
    this.closed = true;
    this.spill.release();
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
