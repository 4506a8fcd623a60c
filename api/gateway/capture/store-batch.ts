/**
 * Writing a batch of captured messages so that no message can block the others: a batch MongoDB
 * refuses for any reason but being unreachable is split until the refused message is alone, and
 * that message is stored as a quarantine record with the reason.
 */
import {
  MongoBulkWriteError,
  MongoError,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoServerError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  type Collection,
} from 'mongodb';
import type { MessageDoc } from '../../../core/documents.ts';
import { DUPLICATE_KEY, isDuplicateKey } from '../../../core/insert-absent.ts';
import { capText } from './shape.ts';

export class WriteTimeoutError extends Error {
  override name = 'WriteTimeoutError';
}

/**
 * Server error codes that mean "not now" (shutting down, stepping down, interrupted), not "never";
 * and 13/18 (unauthorized, authentication failed), which refuse every write, not this message:
 * the messages wait in the spill until the database takes them.
 */
const TRANSIENT_CODES = new Set([6, 7, 13, 18, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436]);

const SOCKET_ERRORS = new Set(['EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'ENOTCONN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EAI_AGAIN']);

/**
 * Whether an error means the database is away (retry later) rather than that it refused the data.
 * insertMany wraps the driver's own error (a closed connection, ECONNREFUSED, a cleared pool) in a
 * MongoBulkWriteError with no write errors and the original as its errorResponse: that one decides.
 */
export function isUnreachable(err: unknown, depth = 0): boolean {
  if (depth > 4) return false;
  if (err instanceof MongoBulkWriteError && err.errorResponse instanceof Error && isUnreachable(err.errorResponse, depth + 1)) return true;
  if (err instanceof Error && err.cause instanceof Error && isUnreachable(err.cause, depth + 1)) return true;
  if (err instanceof WriteTimeoutError) return true;
  // A socket error the driver passes on as it is (seen: `write EPIPE` under a bulk write when FerretDB is killed).
  if (err instanceof Error && !(err instanceof MongoError) && SOCKET_ERRORS.has((err as NodeJS.ErrnoException).code ?? '')) return true;
  if (err instanceof MongoNetworkError || err instanceof MongoServerSelectionError || err instanceof MongoNotConnectedError || err instanceof MongoTopologyClosedError) {
    return true;
  }
  if (err instanceof MongoError && (err.hasErrorLabel('RetryableWriteError') || err.hasErrorLabel('ResetPool'))) return true;
  return err instanceof MongoServerError && typeof err.code === 'number' && TRANSIENT_CODES.has(err.code);
}

/** The most of a refused message a quarantine record keeps (a refusal is often about size). */
export const QUARANTINE_RAW_BYTES = 1024 * 1024;

export interface BatchResult {
  /** Stored, or found already stored (a replay meeting its own earlier write). */
  stored: number;
  /** Stored as quarantine records. */
  quarantined: number;
  /** Refused even as a quarantine record. */
  dropped: { doc: MessageDoc; reason: string }[];
  /** Not written because the database went away: the caller keeps them (spill) for later. */
  unwritten: MessageDoc[];
}

export interface StoreBatchOptions {
  /** A write that takes longer counts as unreachable (its documents are spilled; replay dedupes). */
  timeoutMs: number;
  onQuarantine?(doc: MessageDoc, reason: string): void;
}

/** The record kept for a refused message: what mcpship made itself, the text cut, and why. */
export function quarantineRecord(doc: MessageDoc, reason: string): MessageDoc {
  const { raw, truncated } = capText(doc.raw, QUARANTINE_RAW_BYTES);
  return {
    messageId: doc.messageId,
    service: doc.service,
    version: doc.version,
    ...(doc.sessionId !== undefined ? { sessionId: doc.sessionId } : {}),
    direction: doc.direction,
    kind: doc.kind,
    raw,
    truncated: truncated || doc.truncated,
    redacted: doc.redacted,
    size: doc.size,
    at: doc.at,
    transport: doc.transport,
    quarantine: { reason: reason.slice(0, 2_000) },
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WriteTimeoutError(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function reasonOf(err: unknown): string {
  const e = err as { code?: unknown; errmsg?: unknown; message?: unknown };
  const text = typeof e?.errmsg === 'string' ? e.errmsg : typeof e?.message === 'string' ? e.message : String(err);
  return typeof e?.code === 'number' ? `${text} (code ${e.code})` : text;
}

/** Stores `docs`; never throws. */
export async function storeBatch(messages: Collection<MessageDoc>, docs: MessageDoc[], opts: StoreBatchOptions): Promise<BatchResult> {
  const result: BatchResult = { stored: 0, quarantined: 0, dropped: [], unwritten: [] };
  await write(messages, docs, opts, result);
  return result;
}

/** False once the database is found unreachable (the rest of `docs` is then in result.unwritten). */
async function write(messages: Collection<MessageDoc>, docs: MessageDoc[], opts: StoreBatchOptions, result: BatchResult): Promise<boolean> {
  try {
    // Copies: the driver adds _id to what it is given, and a spilled copy must not carry one.
    await withTimeout(
      messages.insertMany(
        docs.map((d) => ({ ...d })),
        { ordered: false },
      ),
      opts.timeoutMs,
    );
    for (const d of docs) {
      if (d.quarantine) result.quarantined += 1; // shaped as a quarantine record already (capture.ts)
      else result.stored += 1;
    }
    return true;
  } catch (err) {
    if (isUnreachable(err)) {
      result.unwritten.push(...docs);
      return false;
    }
    if (err instanceof MongoBulkWriteError) {
      const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
      if (errors.length > 0 && errors.every((e) => typeof e.index === 'number')) {
        const failed = errors.filter((e) => e.code !== DUPLICATE_KEY);
        result.stored += docs.length - failed.length;
        const later = failed.filter((e) => TRANSIENT_CODES.has(e.code));
        const refused = failed.filter((e) => !TRANSIENT_CODES.has(e.code));
        result.unwritten.push(...later.map((e) => docs[e.index]!));
        for (let i = 0; i < refused.length; i++) {
          const e = refused[i]!;
          if (!(await quarantine(messages, docs[e.index]!, `${e.errmsg ?? 'refused'} (code ${e.code})`, opts, result))) {
            result.unwritten.push(...refused.slice(i + 1).map((r) => docs[r.index]!));
            return false;
          }
        }
        return later.length === 0;
      }
    }
    // Refused as a whole (too large, not serialisable, …): find the message(s) at fault by halves.
    if (docs.length === 1) return quarantine(messages, docs[0]!, reasonOf(err), opts, result);
    const half = Math.ceil(docs.length / 2);
    if (!(await write(messages, docs.slice(0, half), opts, result))) {
      result.unwritten.push(...docs.slice(half));
      return false;
    }
    return write(messages, docs.slice(half), opts, result);
  }
}

async function quarantine(messages: Collection<MessageDoc>, doc: MessageDoc, reason: string, opts: StoreBatchOptions, result: BatchResult): Promise<boolean> {
  const record = quarantineRecord(doc, reason);
  try {
    await withTimeout(messages.insertOne({ ...record }), opts.timeoutMs);
    result.quarantined += 1;
    opts.onQuarantine?.(doc, reason);
    return true;
  } catch (err) {
    if (isUnreachable(err)) {
      result.unwritten.push(doc);
      return false;
    }
    if (isDuplicateKey(err)) {
      result.stored += 1; // an earlier attempt got it in
      return true;
    }
    result.dropped.push({ doc, reason: `${reason}; quarantine record refused too: ${reasonOf(err)}` });
    return true;
  }
}
