/** The dashboard: a hash route per view, refreshed every few seconds and whenever an event arrives. */
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { adminToken } from './api.ts';
import { EventStream } from './events.ts';
import { OverviewPage } from './overview.ts';
import { ServicePage } from './service.ts';
import { notify } from './ui.ts';

const REFRESH_MS = 2_000;
const EVENT_DEBOUNCE_MS = 150;

const view = document.getElementById('view')!;
let page: { refresh(): Promise<void> } | undefined;
let timer: ReturnType<typeof setTimeout> | undefined;
let refreshing: Promise<void> = Promise.resolve();

function route(): void {
  const match = /^#\/services\/([^/]+)$/.exec(location.hash);
  page = match ? new ServicePage(view, decodeURIComponent(match[1]!)) : new OverviewPage(view);
  schedule(0);
}

/** One refresh at a time; a request for another while one runs is folded into the next. */
function schedule(delayMs: number): void {
  clearTimeout(timer);
  timer = setTimeout(() => {
    refreshing = refreshing
      .then(() => page?.refresh())
      .then(() => document.body.setAttribute('data-refreshed', new Date().toISOString()))
      .catch((err: unknown) => notify(`could not refresh: ${(err as Error).message}`, 'error'))
      .finally(() => schedule(REFRESH_MS));
  }, delayMs);
}

const tokenInput = document.getElementById('admin-token') as HTMLInputElement;
tokenInput.value = adminToken.get() ?? '';
document.getElementById('token-save')!.addEventListener('click', () => {
  adminToken.set(tokenInput.value.trim());
  notify(tokenInput.value.trim() ? 'admin token saved in this browser' : 'admin token removed', 'ok');
});

window.addEventListener('hashchange', route);
route();
void new EventStream(document.getElementById('events')!, () => schedule(EVENT_DEBOUNCE_MS)).start().catch((err: unknown) => notify(`event stream: ${(err as Error).message}`, 'error'));
