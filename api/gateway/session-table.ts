/**
 * Which version and instance each MCP session is pinned to. Memory answers the hot path; MongoDB
 * (`sessions`) is the shared copy, so a restarted gateway, or another one behind the same load
 * balancer, routes a session the same way: a miss in memory is looked up there.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { MongoServerError } from 'mongodb';
import { insertOneAbsent } from '../../core/insert-absent.ts';
import type { Store } from '../../core/mongo.ts';

export interface SessionRoute {
  service: string;
  version: string;
  instanceId: string;
  /** The protocol version negotiated in initialize, once the response has been seen. */
  protocolVersion?: string;
}

export interface SessionTableOptions {
  /** Sessions kept in memory; the oldest go first (MongoDB still has them). */
  maxCached?: number;
  /**
   * After a failed write, how long open() and close() stop waiting for MongoDB (they still write):
   * while it is away a new session is known to this gateway only, rather than not served.
   */
  degradedMs?: number;
  /**
   * lastSeenAt is written at most this often per session (5 minutes unless told). Its readers are
   * coarse: the open-sessions gauge counts sessions seen in the last 30 minutes, retention deletes
   * after days. Each write costs FerretDB a scan of the collection (≈ 5 ms of CPU per 1,000
   * sessions, bench/session-store.ts), so at 1,000 busy sessions a 30 s interval was 33 scans a second.
   */
  touchEveryMs?: number;
  log?: { warn(obj: object, msg: string): void };
}

interface Cached extends SessionRoute {
  touchedAt: number;
}

/** Attempts of one session write that FerretDB refused as SQLITE_BUSY, and the pause before each retry (× its number). */
const BUSY_ATTEMPTS = 3;
const BUSY_PAUSE_MS = 100;

/**
 * FerretDB on SQLite answers a write that lost SQLite's write lock (to capture's inserts, mostly)
 * with InternalError "… database is locked (SQLITE_BUSY)", having rolled it back; 0.9 % of 10,000
 * session opens met it under load (docs/performance.md). Every session write is idempotent, so it is
 * sent again rather than leaving the session known to this gateway only.
 */
async function retryBusy(write: () => Promise<unknown>): Promise<unknown> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if (attempt >= BUSY_ATTEMPTS || !(err instanceof MongoServerError && err.message.includes('SQLITE_BUSY'))) throw err;
      await sleep(BUSY_PAUSE_MS * attempt);
    }
  }
}

export class SessionTable {
  private readonly memory = new Map<string, Cached>();
  /**
   * This gateway's writes to a session, one after another: FerretDB rewrites the whole document on
   * an update, so a late protocol-version or lastSeenAt write could otherwise undo a close.
   * Every filter is `{ _id }` alone, the only one FerretDB 1.24 does not answer by decoding the
   * whole collection (core/documents.ts SessionDoc); a write queued behind the close reads the
   * closed document and keeps its closedAt, so it needs no `closedAt` condition.
   */
  private readonly writes = new Map<string, Promise<void>>();
  private readonly maxCached: number;
  private readonly degradedMs: number;
  private failedAt = Number.NEGATIVE_INFINITY;
  private readonly touchEveryMs: number;

  constructor(
    private readonly store: Pick<Store, 'sessions'>,
    private readonly opts: SessionTableOptions = {},
  ) {
    this.maxCached = opts.maxCached ?? 100_000;
    this.degradedMs = opts.degradedMs ?? 10_000;
    this.touchEveryMs = opts.touchEveryMs ?? 5 * 60_000;
  }

  /**
   * Records a new session. Resolves once MongoDB has it, so that the client — which learns the id
   * only from the response this delays — can use any gateway next. Never rejects: when MongoDB
   * fails, the session is still served by this gateway.
   */
  async open(sessionId: string, route: SessionRoute): Promise<void> {
    this.remember(sessionId, { ...route, touchedAt: performance.now() });
    const now = new Date();
    const fields = { service: route.service, version: route.version, instanceId: route.instanceId, lastSeenAt: now, ...(route.protocolVersion ? { protocolVersion: route.protocolVersion } : {}) };
    // One write for the session and its negotiated version (the gateway holds the initialize
    // answer for it): two writes to a new session collided on FerretDB under load. An insert, not
    // an upsert: FerretDB 1.24 checks a new _id through its unique index but finds a document by
    // reading the collection, so an upsert of a new session cost it 3.5 ms of CPU at 1,000 sessions
    // and 30 ms at 10,000, an insert 0.3–0.75 ms at both (docs/performance.md). An id seen before
    // (a server that reuses ids, a write redone after it landed) is the same write as an update.
    const write = this.serially(sessionId, async () => {
      if (await insertOneAbsent(this.store.sessions, { _id: sessionId, ...fields, createdAt: now })) return;
      await this.store.sessions.updateOne({ _id: sessionId }, { $set: fields, $unset: { closedAt: '' } });
    });
    await this.persist(write).catch((err: unknown) => this.opts.log?.warn({ err, sessionId }, 'session not saved to MongoDB; only this gateway knows it'));
  }

  /** The session's route, from memory or MongoDB; undefined when unknown or closed. Throws when MongoDB cannot answer. */
  async get(sessionId: string): Promise<SessionRoute | undefined> {
    const hit = this.memory.get(sessionId);
    if (hit) {
      this.touch(sessionId, hit);
      return hit;
    }
    const doc = await this.store.sessions.findOne({ _id: sessionId });
    if (!doc || doc.closedAt) return undefined;
    const route: Cached = { service: doc.service, version: doc.version, instanceId: doc.instanceId, touchedAt: 0 };
    if (doc.protocolVersion) route.protocolVersion = doc.protocolVersion;
    this.remember(sessionId, route);
    this.touch(sessionId, route);
    return route;
  }

  /**
   * Notes the negotiated protocol version, which decides whether JSON-RPC batches may pass, when
   * it came too late to be part of open().
   */
  setProtocolVersion(sessionId: string, protocolVersion: string): void {
    const hit = this.memory.get(sessionId);
    if (hit) hit.protocolVersion = protocolVersion;
    this.serially(sessionId, () => this.store.sessions.updateOne({ _id: sessionId }, { $set: { protocolVersion } }))
      .catch((err: unknown) => this.opts.log?.warn({ err, sessionId }, 'session protocol version not saved'));
  }

  /**
   * Ends the session for every gateway: later requests with its id get 404. Resolves once MongoDB
   * has it; rejects when the write failed.
   */
  async close(sessionId: string): Promise<void> {
    this.memory.delete(sessionId);
    await this.persist(this.serially(sessionId, () => this.store.sessions.updateOne({ _id: sessionId }, { $set: { closedAt: new Date() } })));
  }

  private serially(sessionId: string, write: () => Promise<unknown>): Promise<void> {
    const previous = this.writes.get(sessionId) ?? Promise.resolve();
    const next = previous.then(() => retryBusy(write)).then(() => undefined);
    const settled = next.catch(() => undefined);
    this.writes.set(sessionId, settled);
    void settled.then(() => {
      if (this.writes.get(sessionId) === settled) this.writes.delete(sessionId);
    });
    return next;
  }

  /** Sessions held in memory (for tests and the health endpoint). */
  get size(): number {
    return this.memory.size;
  }

  /**
   * Waits for a write, however slow MongoDB is (the driver's timeouts bound it): an answer that
   * went out before the write landed would let another gateway route differently. Right after a
   * failure, requests stop waiting until MongoDB has had degradedMs to come back.
   */
  private async persist(write: Promise<unknown>): Promise<void> {
    const settled = write.then(
      () => undefined,
      (err: unknown) => {
        this.failedAt = performance.now();
        throw err;
      },
    );
    if (performance.now() - this.failedAt < this.degradedMs) {
      settled.catch((err: unknown) => this.opts.log?.warn({ err }, 'session write failed while MongoDB is degraded'));
      return;
    }
    await settled;
  }

  private remember(sessionId: string, route: Cached): void {
    this.memory.delete(sessionId);
    this.memory.set(sessionId, route);
    if (this.memory.size > this.maxCached) {
      const oldest = this.memory.keys().next().value;
      if (oldest !== undefined) this.memory.delete(oldest);
    }
  }

  private touch(sessionId: string, route: Cached): void {
    const now = performance.now();
    if (now - route.touchedAt < this.touchEveryMs) return;
    route.touchedAt = now;
    this.serially(sessionId, () => this.store.sessions.updateOne({ _id: sessionId }, { $set: { lastSeenAt: new Date() } })).catch(() => {
      // lastSeenAt is bookkeeping; a missed write is corrected by the next one.
    });
  }
}

