/** The overview: the three panels, alerts (when the API has them) and every service's watch status. */
import type { AlertsAnswer } from '../../api/routes/alerts.ts';
import type { Overview } from '../../api/routes/dashboard.ts';
import { AlertsPanel } from './alerts.ts';
import { get, getOptional, type Wire } from './api.ts';
import { fill, h, percent, stat, time } from './dom.ts';

function transformsPanel(list: Wire<Overview>['transforms']): HTMLElement {
  const panel = h('section', { class: 'panel', 'aria-labelledby': 'p-transforms' }, h('h3', { id: 'p-transforms' }, 'Transform success rate'));
  if (list.length === 0) return (panel.append(h('p', { class: 'empty' }, 'no transforms')), panel);
  const sum = (f: (t: Wire<Overview>['transforms'][number]) => number) => list.reduce((a, t) => a + f(t), 0);
  const forward = sum((t) => t.forwardApplied);
  const reverse = sum((t) => t.backwardApplied);
  const errors = sum((t) => t.forwardFailed + t.backwardFailed);
  const total = forward + reverse + errors;
  panel.append(
    h('div', { class: 'stats' }, stat('forward', forward), stat('reverse', reverse), stat('errors', errors), stat('success rate', percent(total ? (forward + reverse) / total : null))),
  );
  return panel;
}

export class OverviewPage {
  private readonly panels = h('div', { class: 'panels' });
  private readonly alerts = new AlertsPanel(() => this.refresh());
  private readonly services = h('div');

  constructor(root: HTMLElement) {
    fill(root, h('h2', {}, 'Overview'), this.panels, this.alerts.el, h('h3', {}, 'Services'), this.services);
  }

  async refresh(): Promise<void> {
    const [o, alerts] = await Promise.all([get<Wire<Overview>>('/api/overview'), getOptional<Wire<AlertsAnswer>>('/api/alerts')]);
    fill(
      this.panels,
      h('section', { class: 'panel', 'aria-labelledby': 'p-watch' }, h('h3', { id: 'p-watch' }, 'File watch status'), h('div', { class: 'stats' }, stat('services', o.watch.services), stat('pending', o.watch.validating), stat('failed', o.watch.failed))),
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'p-deploy' },
        h('h3', { id: 'p-deploy' }, 'Deployment health'),
        h('div', { class: 'stats' }, stat('active', o.deployments.active), stat('canary', o.deployments.canary), stat('failed', o.deployments.failed)),
      ),
      transformsPanel(o.transforms),
    );
    this.alerts.update(alerts, o.services.filter((s) => s.state !== 'REMOVED').map((s) => s.name));
    this.renderServices(o.services);
  }

  private renderServices(services: Wire<Overview>['services']): void {
    // A log tail someone opened stays open across refreshes.
    const open = new Set([...this.services.querySelectorAll('tr[data-service] details[open]')].map((d) => d.closest('tr')!.getAttribute('data-service')));
    fill(
      this.services,
      services.length === 0
        ? h('p', { class: 'empty' }, 'no services yet: create a folder with an mcp.json under the services directory')
        : h(
            'table',
            { class: 'services', 'aria-label': 'Services' },
            h('thead', {}, h('tr', {}, ['Service', 'Active', 'Canary', 'Last save', 'Validating now', 'Last validation', 'Last failure'].map((c) => h('th', { scope: 'col' }, c)))),
            h(
              'tbody',
              {},
              services.map((s) =>
                h(
                  'tr',
                  { 'data-service': s.name, class: s.state === 'REMOVED' ? 'removed' : undefined },
                  h('th', { scope: 'row' }, h('a', { href: `#/services/${encodeURIComponent(s.name)}` }, s.name)),
                  h('td', {}, s.activeVersion ?? '—'),
                  h('td', {}, s.canaryVersion ?? '—'),
                  h('td', {}, time(s.lastSave?.at)),
                  h(
                    'td',
                    {},
                    s.waitingForSpace
                      ? h('span', { class: 'badge waiting', title: s.waitingForSpace.reason ?? '' }, 'waiting for disk space')
                      : s.validating
                        ? h('span', { class: 'badge running' }, 'validating')
                        : 'no',
                  ),
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
}
