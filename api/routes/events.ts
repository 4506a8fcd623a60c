import { Router } from 'express';
import type { EventDoc } from '../../core/documents.ts';
import type { EventStore, EventQuery } from '../../core/events.ts';
import { HttpError } from '../errors.ts';
import { dateParam, intParam, serviceParam } from '../params.ts';

function queryOf(q: Record<string, unknown>): Omit<EventQuery, 'afterSeq' | 'limit'> {
  return {
    ...(q.service ? { service: serviceParam(q.service) } : {}),
    ...(q.kind ? { kind: String(q.kind) } : {}),
    ...(q.since ? { since: dateParam(q.since, 'since')! } : {}),
  };
}

/** GET /api/events: a page, oldest first, and the cursor of the next one (null: none yet). Each SSE message of the stream is one EventDoc. */
export interface EventPage {
  events: EventDoc[];
  next: number | null;
}

/** Seconds a refused subscriber is told to wait; the CLI's follower reconnects on its own. */
const RETRY_AFTER_SEC = 5;

/**
 * Events: a page at a time (cursor = seq), or live as server-sent events, resumable by Last-Event-ID.
 * Each stream polls MongoDB, so their number is capped (`maxStreams`): the next one gets 503.
 */
export function eventsRouter(events: EventStore, opts: { maxStreams: number }): Router {
  const router = Router();
  let open = 0;

  router.get('/events', async (req, res) => {
    const afterSeq = intParam(req.query.after, 'after', 0)!;
    const limit = intParam(req.query.limit, 'limit', 100, 1)!;
    const page = await events.list({ ...queryOf(req.query), afterSeq, limit });
    const last = page[page.length - 1];
    res.json({ events: page, next: page.length === Math.min(limit, 500) && last ? last.seq : null } satisfies EventPage);
  });

  router.get('/events/stream', async (req, res) => {
    const query = queryOf(req.query);
    const resumeFrom = req.get('last-event-id') ?? (req.query.after as string | undefined);
    const cursor = intParam(resumeFrom, 'Last-Event-ID', undefined);
    if (open >= opts.maxStreams) {
      res.set('retry-after', String(RETRY_AFTER_SEC));
      throw new HttpError(503, 'too_many_streams', `${open} event streams are open, the most this server keeps (MCPSHIP_MAX_EVENT_STREAMS); close one or retry in ${RETRY_AFTER_SEC} s`);
    }
    // The slot is taken before any await, and given back on close, even when the client leaves early.
    open++;
    let stop = () => {};
    let gone = false;
    res.on('close', () => {
      gone = true;
      open--;
      stop();
    });
    // Without a cursor the stream starts now: the history is what GET /api/events is for.
    const afterSeq = cursor ?? (await events.lastSeq());
    if (gone) return;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write('retry: 2000\n\n');
    const unfollow = events.follow(query, afterSeq, (event) => {
      res.write(`id: ${event.seq}\nevent: ${event.kind}\ndata: ${JSON.stringify(event)}\n\n`);
    });
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    stop = () => {
      unfollow();
      clearInterval(keepAlive);
    };
  });

  return router;
}
