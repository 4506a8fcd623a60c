import { Router } from 'express';
import type { EventStore, EventQuery } from '../../core/events.ts';
import { dateParam, intParam, serviceParam } from '../params.ts';

function queryOf(q: Record<string, unknown>): Omit<EventQuery, 'afterSeq' | 'limit'> {
  return {
    ...(q.service ? { service: serviceParam(q.service) } : {}),
    ...(q.kind ? { kind: String(q.kind) } : {}),
    ...(q.since ? { since: dateParam(q.since, 'since')! } : {}),
  };
}

/** Events: a page at a time (cursor = seq), or live as server-sent events, resumable by Last-Event-ID. */
export function eventsRouter(events: EventStore): Router {
  const router = Router();

  router.get('/events', async (req, res) => {
    const afterSeq = intParam(req.query.after, 'after', 0)!;
    const limit = intParam(req.query.limit, 'limit', 100, 1)!;
    const page = await events.list({ ...queryOf(req.query), afterSeq, limit });
    const last = page[page.length - 1];
    res.json({ events: page, next: page.length === Math.min(limit, 500) && last ? last.seq : null });
  });

  router.get('/events/stream', async (req, res) => {
    const query = queryOf(req.query);
    const resumeFrom = req.get('last-event-id') ?? (req.query.after as string | undefined);
    // Without a cursor the stream starts now: the history is what GET /api/events is for.
    const afterSeq = intParam(resumeFrom, 'Last-Event-ID', undefined) ?? (await events.lastSeq());
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write('retry: 2000\n\n');
    const stop = events.follow(query, afterSeq, (event) => {
      res.write(`id: ${event.seq}\nevent: ${event.kind}\ndata: ${JSON.stringify(event)}\n\n`);
    });
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    req.on('close', () => {
      stop();
      clearInterval(keepAlive);
    });
  });

  return router;
}
