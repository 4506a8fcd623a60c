/**
 * The spill: append-only JSONL segments in one folder, written while MongoDB is away or the
 * writer's buffer is full, replayed when it is back. Appends never block the caller: documents
 * wait in a bounded queue that one asynchronous writer drains to disk. The folder is bounded in
 * bytes; what does not fit is dropped and reported through onDrop.
 *
 * File names are `<pid>.<writerId>.<n>.jsonl`. A file whose pid is not alive (or 0: released by a
 * closed writer) is an orphan, adopted (renamed, so only one writer gets it) and replayed.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { open, readFile, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { MessageDoc } from '../../../core/documents.ts';

interface Segment {
  file: string;
  /** Documents in the file. */
  count: number;
  /** Lines already stored in MongoDB, skipped if a replay is interrupted and resumed. */
  done: number;
  bytes: number;
}

export type SpillDropReason = 'spill full' | 'spill queue full' | 'spill write failed';

export interface SpillOptions {
  dir: string;
  writerId: string;
  /** A file is closed and a new one begun beyond this size. */
  segmentBytes: number;
  /** All spill files together stay within this; documents beyond it are dropped. */
  maxBytes: number;
  /** Documents waiting in memory for the disk; beyond this they are dropped. */
  maxQueuedBytes: number;
  onDrop(docs: readonly MessageDoc[], reason: SpillDropReason, err?: unknown): void;
}

/** Bytes a document takes in memory while queued (its text dominates). */
export function docBytes(doc: MessageDoc): number {
  return doc.raw.length + 256;
}

export class SpillLog {
  private current: (Segment & { handle: FileHandle }) | undefined;
  private readonly sealed: Segment[] = [];
  private seq = 0;
  private queue: MessageDoc[] = [];
  private queuedBytes = 0;
  private draining: Promise<void> | undefined;
  /** Documents written to spill files. */
  spilled = 0;
  /** Bytes in spill files not yet deleted. */
  diskBytes = 0;
  /** Documents in the spill (queued or on disk) not yet replayed. */
  pending = 0;
  /** Documents found in orphaned files. */
  adopted = 0;
  /** Lines that could not be read back (a torn write from a crash). */
  unreadable = 0;

  constructor(private readonly opts: SpillOptions) {
    mkdirSync(opts.dir, { recursive: true });
    this.adoptOrphans();
  }

  get dir(): string {
    return this.opts.dir;
  }

  private name(pid: number, tag: string): string {
    return path.join(this.opts.dir, `${pid}.${this.opts.writerId}.${tag}.jsonl`);
  }

  /** Queues documents for the disk and returns at once. */
  append(docs: readonly MessageDoc[]): void {
    const fits: MessageDoc[] = [];
    const over: MessageDoc[] = [];
    for (const doc of docs) {
      const bytes = docBytes(doc);
      if (this.queuedBytes + bytes > this.opts.maxQueuedBytes) over.push(doc);
      else {
        fits.push(doc);
        this.queuedBytes += bytes;
      }
    }
    if (over.length > 0) this.opts.onDrop(over, 'spill queue full');
    if (fits.length === 0) return;
    this.queue.push(...fits);
    this.pending += fits.length;
    this.draining ??= this.drain().finally(() => (this.draining = undefined));
  }

  /** Resolves once everything appended so far is on disk (or dropped). */
  async written(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const docs = this.queue;
      this.queue = [];
      this.queuedBytes = 0;
      const lines: string[] = [];
      const kept: MessageDoc[] = [];
      const full: MessageDoc[] = [];
      let bytes = 0;
      for (const doc of docs) {
        const line = JSON.stringify(doc) + '\n';
        const n = Buffer.byteLength(line);
        if (this.diskBytes + bytes + n > this.opts.maxBytes) {
          full.push(doc);
          continue;
        }
        lines.push(line);
        kept.push(doc);
        bytes += n;
      }
      if (full.length > 0) {
        this.pending -= full.length;
        this.opts.onDrop(full, 'spill full');
      }
      if (kept.length === 0) continue;
      try {
        if (!this.current) {
          const file = this.name(process.pid, String(this.seq++));
          this.current = { file, handle: await open(file, 'a'), bytes: 0, count: 0, done: 0 };
        }
        await this.current.handle.write(lines.join(''));
        this.current.bytes += bytes;
        this.current.count += kept.length;
        this.spilled += kept.length;
        this.diskBytes += bytes;
        if (this.current.bytes >= this.opts.segmentBytes) await this.closeCurrent();
      } catch (err) {
        this.pending -= kept.length;
        this.opts.onDrop(kept, 'spill write failed', err);
        await this.closeCurrent().catch(() => undefined); // a torn line stays behind; replay skips it
      }
    }
  }

  private async closeCurrent(): Promise<void> {
    const current = this.current;
    if (!current) return;
    this.current = undefined;
    await current.handle.close();
    const { file, count, done, bytes } = current;
    this.sealed.push({ file, count, done, bytes });
  }

  /** Closes the file being written (after what is queued), so that a replay reads a file nobody appends to. */
  async seal(): Promise<void> {
    await this.written();
    await this.closeCurrent();
  }

  get hasPending(): boolean {
    return this.pending > 0 || this.sealed.length > 0;
  }

  /**
   * Stores every sealed segment through `store`, oldest first, deleting each once it is stored.
   * Stops (returns false) at the first batch `store` could not write; a later call resumes there.
   */
  async replay(batchSize: number, store: (docs: MessageDoc[]) => Promise<boolean>): Promise<boolean> {
    await this.seal();
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
      this.diskBytes -= segment.bytes;
      this.sealed.shift();
    }
    return true;
  }

  /** Hands the remaining files to whoever starts next (pid 0 reads as "not alive"). */
  async release(): Promise<void> {
    await this.seal();
    for (const segment of this.sealed) {
      if (segment.done > 0) continue; // a half-replayed file stays with its done-mark in this process
      await rename(segment.file, this.name(0, `r${this.seq++}`)).catch(() => {
        // Left under our pid: still adopted once this process is gone.
      });
    }
  }

  private adoptOrphans(): void {
    for (const entry of readdirSync(this.opts.dir)) {
      const match = /^(\d+)\.[^.]+\.[^.]+\.jsonl$/.exec(entry);
      if (!match || isAlive(Number(match[1]))) continue;
      const file = this.name(process.pid, `a${this.seq++}`);
      try {
        renameSync(path.join(this.opts.dir, entry), file);
      } catch {
        continue; // another writer adopted it first
      }
      const count = readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0).length;
      const bytes = statSync(file).size;
      this.sealed.push({ file, count, done: 0, bytes });
      this.pending += count;
      this.adopted += count;
      this.diskBytes += bytes;
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
