/**
 * The live event stream: the recent past from GET /api/events, then SSE from
 * /api/events/stream, resumed after any drop from the last seq seen (Last-Event-ID), so no event
 * is shown twice or skipped.
 */
import { createParser } from 'eventsource-parser';
import type { EventPage } from '../../api/routes/events.ts';
import type { EventDoc } from '../../core/documents.ts';
import { get, headers, type Wire } from './api.ts';
import { fill, h, time } from './dom.ts';

type EventItem = Wire<EventDoc>;

const KEEP = 300;
const HISTORY_MS = 15 * 60_000;
const RETRY_MS = 2_000;

/** What a capture event says (api/gateway/capture/spill-events.ts, drops.ts): where, and how many messages. */
function captureFigures(e: EventItem): string {
  const d = e.details ?? {};
  const where = d.host !== undefined ? ` on ${String(d.host)}/${String(d.pid)}` : '';
  if (e.kind === 'capture.spilling') return `${where}: ${String(d.pending)} messages waiting on disk since ${time(String(d.since))}`;
  if (e.kind === 'capture.recovered') return `${where}: ${String(d.spilled)} spilled from ${time(String(d.since))} to ${time(String(d.until))}, ${String(d.replayed)} replayed, ${String(d.dropped)} dropped`;
  if (e.kind === 'capture.messages_dropped') return `: ${String(d.count)} messages dropped`;
  return '';
}

/** What a silence event says (api/routes/alerts.ts): what it matches and until when; its comment is the reason. */
function silenceFigures(e: EventItem): string {
  const d = e.details ?? {};
  return `: ${typeof d.service === 'string' ? d.service : 'all services'} / ${typeof d.rule === 'string' ? d.rule : 'all rules'} until ${time(String(d.expiresAt))}`;
}

function summary(e: EventItem): string {
  const d = e.details ?? {};
  const reason = typeof d.reason === 'string' ? d.reason : Array.isArray(d.reasons) ? d.reasons.join('; ') : typeof d.summary === 'string' ? d.summary : typeof d.comment === 'string' ? d.comment : '';
  const weight = typeof d.weight === 'number' && /CANARY|WEIGHT|PROMOT/.test(e.kind) ? ` weight ${d.weight}%` : '';
  const figures = e.kind.startsWith('capture.') ? captureFigures(e) : e.kind.startsWith('ALERT_SILENCE') ? silenceFigures(e) : '';
  return `${weight}${figures}${reason ? ` — ${reason}` : ''}`;
}

export class EventStream {
  private readonly items: EventItem[] = [];
  private lastSeq = 0;
  private readonly list = h('ol', { id: 'event-list', class: 'events', 'aria-label': 'Events' });
  private readonly serviceFilter = h('select', { id: 'filter-service', onchange: () => this.render() }, h('option', { value: '' }, 'all services'));
  private readonly kindFilter = h('select', { id: 'filter-kind', onchange: () => this.render() }, h('option', { value: '' }, 'all kinds'));
  private readonly status = h('span', { id: 'stream-status', class: 'stream-status', role: 'status' }, 'connecting');
  /** The last time the stream was cut and resumed, so a person knows the page was not live meanwhile. */
  private readonly note = h('p', { id: 'stream-note', class: 'stream-note', role: 'status', hidden: true });
  private droppedAt: Date | undefined;
  private drops = 0;

  constructor(
    root: HTMLElement,
    private readonly onEvent: (e: EventItem) => void,
  ) {
    fill(
      root,
      h('h2', {}, 'Live events ', this.status),
      this.note,
      h('div', { class: 'filters' }, h('label', { for: 'filter-service' }, 'Service'), this.serviceFilter, h('label', { for: 'filter-kind' }, 'Kind'), this.kindFilter),
      this.list,
    );
  }

  async start(): Promise<void> {
    const since = new Date(Date.now() - HISTORY_MS).toISOString();
    let after = 0;
    for (let page = 0; page < 20; page++) {
      const res = await get<Wire<EventPage>>(`/api/events?since=${encodeURIComponent(since)}&limit=500&after=${after}`);
      res.events.forEach((e) => this.add(e));
      if (res.next === null) break;
      after = res.next;
    }
    this.render();
    void this.connect();
  }

  /**
   * Reads the stream with fetch rather than EventSource: events are named by kind (`event:
   * CANARY_STEP`), and EventSource hands a named event only to a listener of that very name, so a
   * kind added later would be silently dropped. Reconnects send Last-Event-ID, as EventSource would.
   */
  private async connect(): Promise<void> {
    for (;;) {
      try {
        const res = await fetch('/api/events/stream', { headers: headers({ accept: 'text/event-stream', ...(this.lastSeq ? { 'last-event-id': String(this.lastSeq) } : {}) }) });
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        this.setStatus('live');
        this.resumed();
        const parser = createParser({ onEvent: (msg) => this.receive(msg.data) });
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.feed(value);
        }
      } catch {
        // Dropped or refused: try again after a pause, from the last event seen.
      }
      this.droppedAt ??= new Date();
      this.setStatus('reconnecting');
      this.note.hidden = false;
      this.note.textContent = `disconnected since ${time(this.droppedAt)}; reconnecting from event #${this.lastSeq}`;
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }

  private resumed(): void {
    if (!this.droppedAt) return;
    const now = new Date();
    this.drops += 1;
    this.note.dataset.drops = String(this.drops);
    this.note.textContent = `disconnected from ${time(this.droppedAt)} to ${time(now)} (${Math.round((now.getTime() - this.droppedAt.getTime()) / 1000)} s); resumed after event #${this.lastSeq}, the events in between follow`;
    this.droppedAt = undefined;
  }

  private setStatus(text: string): void {
    this.status.textContent = text;
    this.status.dataset.state = text;
  }

  private receive(data: string): void {
    const e = JSON.parse(data) as EventItem;
    if (e.seq <= this.lastSeq) return;
    this.add(e);
    this.render();
    this.onEvent(e);
  }

  private add(e: EventItem): void {
    if (e.seq <= this.lastSeq) return;
    this.lastSeq = e.seq;
    this.items.push(e);
    if (this.items.length > KEEP) this.items.splice(0, this.items.length - KEEP);
    for (const [select, value] of [
      [this.serviceFilter, e.service],
      [this.kindFilter, e.kind],
    ] as const) {
      if (![...select.options].some((o) => o.value === value)) select.append(h('option', { value }, value));
    }
  }

  private render(): void {
    const service = this.serviceFilter.value;
    const kind = this.kindFilter.value;
    const shown = this.items.filter((e) => (!service || e.service === service) && (!kind || e.kind === kind));
    fill(
      this.list,
      shown
        .slice()
        .reverse()
        .map((e) =>
          h(
            'li',
            { class: `event ${e.status}`, 'data-seq': e.seq, 'data-kind': e.kind, 'data-service': e.service },
            h('time', { datetime: e.time }, time(e.time)),
            ' ',
            h('strong', {}, e.kind),
            ` ${e.service}${e.version ? `@${e.version}` : ''}${summary(e)}`,
          ),
        ),
    );
  }
}

