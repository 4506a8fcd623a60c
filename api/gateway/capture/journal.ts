/**
 * The journal: every captured message is appended to a JSONL segment with a synchronous write
 * before the writer returns to the gateway, so a message the gateway forwarded is in the kernel's
 * page cache even if the process is killed the next instant. The writes are not fsynced (that
 * costs milliseconds each): a power loss or kernel crash can still lose what the kernel had not
 * written back.
 *
 * A segment is of one of two kinds:
 * - `memory`: its messages are also in the writer's buffer and reach MongoDB from there; the file
 *   only matters after a crash. Once all of them are stored it is emptied (or deleted if sealed).
 * - `spill`: written while MongoDB is away or the buffer is full; its messages are stored by
 *   reading the file back (replay). When the writer gives up on its buffer, its memory segments
 *   become spill segments, minus the lines already stored.
 *
 * File names are `<pid>.<writerId>.<n>.jsonl`. A file whose pid is not alive (or 0: released by a
 * closed writer) is an orphan, adopted (renamed, so only one writer gets it) and replayed whole;
 * messages it holds that were stored already are met again and are no-ops (messageId is unique).
 */
import { closeSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { MessageDoc } from '../../../core/documents.ts';

export type SegmentKind = 'memory' | 'spill';

export interface Segment {
  file: string;
  kind: SegmentKind;
  /** Open while it is the segment appended to. */
  fd: number | undefined;
  /** Lines in the file. */
  count: number;
  /** Lines known stored in MongoDB (from the writer's buffer); a replay skips them. */
  storedLines: Set<number>;
  /** Lines a replay has gone through, resumed there if it is interrupted. */
  done: number;
  bytes: number;
}

/** Where a message went in the journal: its segment and line. */
export interface JournalEntry {
  segment: Segment;
  line: number;
}

export type JournalDropReason = 'spill full' | 'spill write failed';

export interface JournalOptions {
  dir: string;
  writerId: string;
  /** A segment is closed and a new one begun beyond this size. */
  segmentBytes: number;
  /** All segments together stay within this; a message beyond it is not journaled. */
  maxBytes: number;
  log?: { warn(obj: object, msg: string): void };
}

/** Bytes a document takes in memory (its text dominates). */
export function docBytes(doc: MessageDoc): number {
  return doc.raw.length + 256;
}

export class Journal {
  private current: Segment | undefined;
  /** Spill segments nobody appends to any more, oldest first. */
  private readonly sealed: Segment[] = [];
  /** Memory segments nobody appends to any more, with lines not stored yet. */
  private readonly sealedMemory = new Set<Segment>();
  private seq = 0;
  private writeFailing = false;
  /** Messages appended (both kinds). */
  journaled = 0;
  /** Messages in spill segments (appended there, or moved there from memory segments). */
  spilled = 0;
  /** Bytes of segment files not yet deleted. */
  diskBytes = 0;
  /** Messages in spill segments not yet replayed. */
  pending = 0;
  /** Messages found in orphaned files. */
  adopted = 0;
  /** Lines that could not be read back (a torn write). */
  unreadable = 0;

  constructor(private readonly opts: JournalOptions) {
    mkdirSync(opts.dir, { recursive: true });
    this.adoptOrphans();
  }

  get dir(): string {
    return this.opts.dir;
  }

  private name(pid: number, tag: string): string {
    return path.join(this.opts.dir, `${pid}.${this.opts.writerId}.${tag}.jsonl`);
  }

  /** Appends one message, synchronously: on return it is in the file (or the reason it is not). */
  append(doc: MessageDoc, kind: SegmentKind): JournalEntry | JournalDropReason {
    const line = JSON.stringify(doc) + '\n';
    const n = Buffer.byteLength(line);
    if (this.diskBytes + n > this.opts.maxBytes) return 'spill full';
    if (this.current && this.current.kind !== kind) this.sealCurrent();
    let segment = this.current;
    try {
      if (!segment) {
        const file = this.name(process.pid, String(this.seq++));
        segment = { file, kind, fd: openSync(file, 'a'), count: 0, storedLines: new Set(), done: 0, bytes: 0 };
        this.current = segment;
      }
      const written = writeSync(segment.fd!, line);
      if (written !== n) throw new Error(`short write: ${written} of ${n} bytes`);
    } catch (err) {
      if (!this.writeFailing) this.opts.log?.warn({ err, dir: this.opts.dir }, 'capture journal write failed');
      this.writeFailing = true;
      if (segment) this.abandonTail(segment);
      return 'spill write failed';
    }
    this.writeFailing = false;
    const entry = { segment, line: segment.count };
    segment.count += 1;
    segment.bytes += n;
    this.diskBytes += n;
    this.journaled += 1;
    if (kind === 'spill') {
      this.spilled += 1;
      this.pending += 1;
    }
    if (segment.bytes >= this.opts.segmentBytes) this.sealCurrent();
    return entry;
  }

  /** A failed write may have left part of a line: cut it off and append no more to that file. */
  private abandonTail(segment: Segment): void {
    try {
      if (segment.fd !== undefined) ftruncateSync(segment.fd, segment.bytes);
    } catch {
      // The torn line stays; a replay counts it as unreadable.
    }
    this.sealCurrent();
  }

  /** A message of a memory segment is stored (or quarantined): its line need not be read back. */
  stored(entry: JournalEntry): void {
    const { segment, line } = entry;
    if (segment.storedLines.has(line) || line < segment.done) return;
    segment.storedLines.add(line);
    if (segment.kind === 'spill') {
      this.pending -= 1; // moved to the spill, then stored by the write already under way
      return;
    }
    if (segment.storedLines.size < segment.count) return;
    if (segment === this.current) {
      // All stored: empty the file rather than let it grow with lines nobody will read.
      try {
        ftruncateSync(segment.fd!, 0);
        this.diskBytes -= segment.bytes;
        segment.bytes = 0;
        segment.count = 0;
        segment.storedLines.clear();
      } catch {
        this.sealCurrent();
      }
    } else if (this.sealedMemory.delete(segment)) {
      this.remove(segment);
    }
  }

  /**
   * The writer no longer holds its memory segments' messages: they become spill segments,
   * replayed from the file (the lines already stored are skipped).
   */
  toSpill(): void {
    if (this.current?.kind === 'memory') this.sealCurrent();
    for (const segment of this.sealedMemory) {
      segment.kind = 'spill';
      const left = segment.count - segment.storedLines.size;
      this.spilled += left;
      this.pending += left;
      this.sealed.push(segment);
    }
    this.sealedMemory.clear();
  }

  /**
   * Closes the memory segment being appended to, so that it is deleted once the messages it holds
   * are stored: under steady traffic a crash then replays about one write cycle, not a full segment.
   */
  rotate(): void {
    if (this.current?.kind === 'memory' && this.current.count > 0) this.sealCurrent();
  }

  private sealCurrent(): void {
    const segment = this.current;
    if (!segment) return;
    this.current = undefined;
    try {
      closeSync(segment.fd!);
    } catch {
      // Closing a file that took writes cannot lose them; nothing to do.
    }
    segment.fd = undefined;
    if (segment.storedLines.size >= segment.count) this.remove(segment);
    else if (segment.kind === 'spill') this.sealed.push(segment);
    else this.sealedMemory.add(segment);
  }

  private remove(segment: Segment): void {
    try {
      unlinkSync(segment.file);
    } catch {
      // Already gone.
    }
    this.diskBytes -= segment.bytes;
  }

  get hasPending(): boolean {
    return this.pending > 0 || this.sealed.length > 0;
  }

  /**
   * Stores every spill segment through `store`, oldest first, deleting each once it is stored.
   * Stops (returns false) at the first batch `store` could not write; a later call resumes there.
   */
  async replay(batchSize: number, store: (docs: MessageDoc[]) => Promise<boolean>): Promise<boolean> {
    if (this.current?.kind === 'spill') this.sealCurrent(); // read only files nobody appends to
    while (this.sealed.length > 0) {
      const segment = this.sealed[0]!;
      const lines = linesOf(await readFile(segment.file, 'utf8'));
      for (let i = segment.done; i < lines.length; i += batchSize) {
        const end = Math.min(lines.length, i + batchSize);
        const docs: MessageDoc[] = [];
        let waiting = 0;
        for (let j = i; j < end; j++) {
          if (segment.storedLines.has(j)) continue;
          waiting += 1;
          try {
            const doc = JSON.parse(lines[j]!) as MessageDoc;
            doc.at = new Date(doc.at);
            docs.push(doc);
          } catch {
            this.unreadable += 1;
          }
        }
        if (docs.length > 0 && !(await store(docs))) return false;
        segment.done = end;
        this.pending -= waiting;
      }
      await unlink(segment.file).catch(() => undefined);
      this.diskBytes -= segment.bytes;
      this.sealed.shift();
    }
    return true;
  }

  /** Hands the remaining files to whoever starts next (pid 0 reads as "not alive"). */
  async release(): Promise<void> {
    this.toSpill();
    if (this.current) this.sealCurrent();
    for (const segment of this.sealed) {
      if (segment.done > 0 || segment.storedLines.size > 0) continue; // keeps its marks in this process; adopted once it is gone
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
      const count = linesOf(readFileSync(file, 'utf8')).length;
      const bytes = statSync(file).size;
      this.sealed.push({ file, kind: 'spill', fd: undefined, count, storedLines: new Set(), done: 0, bytes });
      this.pending += count;
      this.adopted += count;
      this.diskBytes += bytes;
    }
  }
}

/** A segment's lines; a torn last line (a crash mid-write) is one too, and fails to parse. */
function linesOf(text: string): string[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
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
