/** The overview: the three panels, alerts (when the API has them) and every service's watch status. */
import { get, getOptional } from './api.ts';
import { fill, h, percent, stat, time } from './dom.ts';

interface Overview {
  watch: { services: number; validating: number; failed: number };
  deployments: { active: number; canary: number; failed: number };
  transforms: { transformId: string; forwardApplied: number; forwardFailed: number; backwardApplied: number; backwardFailed: number }[];
  services: {
    name: string;
    state: string;
    activeVersion?: string;
    canaryVersion?: string;
    lastSave?: { at: string; hash?: string };
    validating: boolean;
    lastValidation?: { ok: boolean; at: string; reason?: string; version?: string };
    lastFailure?: { at: string; reason?: string; step?: string; outputTail?: string; logFile?: string };
  }[];
}

function transformsPanel(list: Overview['transforms']): HTMLElement {
  const panel = h('section', { class: 'panel', 'aria-labelledby': 'p-transforms' }, h('h3', { id: 'p-transforms' }, 'Transform success rate'));
  if (list.length === 0) return (panel.append(h('p', { class: 'empty' }, 'no transforms')), panel);
  const sum = (f: (t: Overview['transforms'][number]) => number) => list.reduce((a, t) => a + f(t), 0);
  const forward = sum((t) => t.forwardApplied);
  const reverse = sum((t) => t.backwardApplied);
  const errors = sum((t) => t.forwardFailed + t.backwardFailed);
  const total = forward + reverse + errors;
  panel.append(
    h('div', { class: 'stats' }, stat('forward', forward), stat('reverse', reverse), stat('errors', errors), stat('success rate', percent(total ? (forward + reverse) / total : null))),
  );
  return panel;
}

/** An alerts panel that reads GET /api/alerts once the alert manager serves it. */
export function alertsPanel(alerts: unknown): HTMLElement {
  const panel = h('section', { class: 'panel', 'aria-labelledby': 'p-alerts' }, h('h3', { id: 'p-alerts' }, 'Alerts'));
  if (alerts === null) return (panel.append(h('p', { class: 'empty' }, 'alerts not available')), panel);
  const list = (Array.isArray(alerts) ? alerts : ((alerts as { alerts?: unknown[] }).alerts ?? [])) as Record<string, unknown>[];
  if (list.length === 0) return (panel.append(h('p', { class: 'empty' }, 'no alerts')), panel);
  panel.append(
    h(
      'ul',
      { class: 'alerts' },
      list.map((a) =>
        h('li', { class: `alert ${String(a.state ?? '')}` }, h('strong', {}, String(a.state ?? '')), ` ${String(a.service ?? '')} ${String(a.rule ?? a.name ?? '')}: ${String(a.summary ?? a.message ?? '')}`),
      ),
    ),
  );
  return panel;
}

export async function renderOverview(root: HTMLElement): Promise<void> {
  const [o, alerts] = await Promise.all([get<Overview>('/api/overview'), getOptional<unknown>('/api/alerts')]);
  // A log tail someone opened stays open across refreshes.
  const open = new Set([...root.querySelectorAll('tr[data-service] details[open]')].map((d) => d.closest('tr')!.getAttribute('data-service')));
  fill(
    root,
    h('h2', {}, 'Overview'),
    h(
      'div',
      { class: 'panels' },
      h('section', { class: 'panel', 'aria-labelledby': 'p-watch' }, h('h3', { id: 'p-watch' }, 'File watch status'), h('div', { class: 'stats' }, stat('services', o.watch.services), stat('pending', o.watch.validating), stat('failed', o.watch.failed))),
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'p-deploy' },
        h('h3', { id: 'p-deploy' }, 'Deployment health'),
        h('div', { class: 'stats' }, stat('active', o.deployments.active), stat('canary', o.deployments.canary), stat('failed', o.deployments.failed)),
      ),
      transformsPanel(o.transforms),
      alertsPanel(alerts),
    ),
    h('h3', {}, 'Services'),
    o.services.length === 0
      ? h('p', { class: 'empty' }, 'no services yet: create a folder with an mcp.json under the services directory')
      : h(
          'table',
          { class: 'services', 'aria-label': 'Services' },
          h('thead', {}, h('tr', {}, ['Service', 'Active', 'Canary', 'Last save', 'Validating now', 'Last validation', 'Last failure'].map((c) => h('th', { scope: 'col' }, c)))),
          h(
            'tbody',
            {},
            o.services.map((s) =>
              h(
                'tr',
                { 'data-service': s.name, class: s.state === 'REMOVED' ? 'removed' : undefined },
                h('th', { scope: 'row' }, h('a', { href: `#/services/${encodeURIComponent(s.name)}` }, s.name)),
                h('td', {}, s.activeVersion ?? '—'),
                h('td', {}, s.canaryVersion ?? '—'),
                h('td', {}, time(s.lastSave?.at)),
                h('td', {}, s.validating ? h('span', { class: 'badge running' }, 'validating') : 'no'),
                h('td', {}, s.lastValidation ? `${s.lastValidation.ok ? `ok${s.lastValidation.version ? ` → ${s.lastValidation.version}` : ''}` : 'failed'} at ${time(s.lastValidation.at)}` : '—'),
                h(
                  'td',
                  {},
                  s.lastFailure
                    ? h(
                        'details',
                        { open: open.has(s.name) },
                        h('summary', {}, `${time(s.lastFailure.at)} ${s.lastFailure.step ?? ''}: ${s.lastFailure.reason ?? ''}`),
                        s.lastFailure.outputTail ? h('pre', { class: 'log' }, s.lastFailure.outputTail) : h('p', {}, 'no step output'),
                        s.lastFailure.logFile ? h('p', { class: 'muted' }, `full log: ${s.lastFailure.logFile}`) : null,
                      )
                    : '—',
                ),
              ),
            ),
          ),
        ),
  );
}
