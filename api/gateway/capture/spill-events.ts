/**
 * A spill is reported as an episode, never per message: `capture.spilling` when messages start to
 * wait on disk, `capture.recovered` once the spill is replayed and has stayed empty for a settle
 * time (so a flapping MongoDB makes one episode, not one per flap), and a repeated
 * `capture.spilling` every REPEAT_MS while it lasts (the alert rule lets an episode with no news
 * for SPILL_STALE_MS go: its gateway died, and the next one replays the spill). A spill usually
 * means MongoDB is away, and the event store is there too: the events wait, in order, until they
 * can be written (the first one says since when).
 */
import os from 'node:os';
import type { NewEvent } from '../../../core/events.ts';
import { SYSTEM_SERVICE } from '../../../alerts/types.ts';
import type { DropSink } from './drops.ts';

export const SPILLING_EVENT_KIND = 'capture.spilling';
export const RECOVERED_EVENT_KIND = 'capture.recovered';
export const SPILL_REPEAT_MS = 5 * 60_000;
export const SPILL_STALE_MS = 3 * SPILL_REPEAT_MS;

/** The writer's figures an event quotes (CaptureCounters has them). */
export interface SpillFigures {
  spilled: number;
  replayed: number;
  dropped: number;
  spillPending: number;
  spillBytes: number;
}

interface Episode {
  since: number;
  start: SpillFigures;
  lastReport: number;
  /** When the spill was last seen empty, while waiting for it to settle. */
  emptySince: number | undefined;
}

export class SpillReporter {
  private episode: Episode | undefined;
  private readonly queue: NewEvent[] = [];
  private reporting = false;
  private readonly writer: { writer: string; host: string; pid: number };

  constructor(
    private readonly sink: DropSink | undefined,
    writerId: string,
    private readonly settleMs: number,
    private readonly log?: { warn(obj: object, msg: string): void; info?(obj: object, msg: string): void },
  ) {
    this.writer = { writer: writerId, host: os.hostname(), pid: process.pid };
  }

  /** Called on the writer's timer: whether messages wait in the spill now, and why they would. */
  observe(spilling: boolean, figures: SpillFigures, reason: () => string, now = Date.now()): void {
    const ep = this.episode;
    if (!ep) {
      if (!spilling) return;
      const why = reason();
      this.episode = { since: now, start: figures, lastReport: now, emptySince: undefined };
      this.log?.warn({ reason: why, pending: figures.spillPending }, 'capture is spilling to disk');
      this.enqueue(SPILLING_EVENT_KIND, 'failed', { since: new Date(now).toISOString(), reason: why, pending: figures.spillPending, spillBytes: figures.spillBytes });
      return;
    }
    if (spilling) {
      ep.emptySince = undefined;
      // A repeat says nothing new while the previous report still waits to be written.
      if (now - ep.lastReport >= SPILL_REPEAT_MS && this.queue.length === 0) {
        ep.lastReport = now;
        this.enqueue(SPILLING_EVENT_KIND, 'failed', { since: new Date(ep.since).toISOString(), reason: reason(), pending: figures.spillPending, spillBytes: figures.spillBytes, repeat: true });
      }
      return;
    }
    ep.emptySince ??= now;
    if (now - ep.emptySince < this.settleMs) return;
    this.episode = undefined;
    const spilled = figures.spilled - ep.start.spilled + ep.start.spillPending;
    const replayed = figures.replayed - ep.start.replayed;
    const dropped = figures.dropped - ep.start.dropped;
    this.log?.info?.({ spilled, replayed, dropped }, 'capture spill replayed');
    this.enqueue(RECOVERED_EVENT_KIND, dropped > 0 ? 'failed' : 'ok', {
      since: new Date(ep.since).toISOString(),
      until: new Date(ep.emptySince).toISOString(),
      durationMs: ep.emptySince - ep.since,
      spilled,
      replayed,
      dropped,
    });
  }

  private enqueue(kind: string, status: NewEvent['status'], details: Record<string, unknown>): void {
    if (!this.sink) return;
    this.queue.push({ service: SYSTEM_SERVICE, kind, status, details: { ...this.writer, ...details } });
  }

  get waiting(): boolean {
    return this.queue.length > 0;
  }

  /** Writes the waiting events in order; the first that cannot be written waits with those after it. */
  async report(): Promise<void> {
    if (!this.sink || this.reporting || this.queue.length === 0) return;
    this.reporting = true;
    try {
      while (this.queue.length > 0) {
        await this.sink.append(this.queue[0]!);
        this.queue.shift();
      }
    } catch {
      // The event store is away too (it usually shares MongoDB): the next tick tries again.
    } finally {
      this.reporting = false;
    }
  }
}
