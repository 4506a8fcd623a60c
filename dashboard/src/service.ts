/** One service: versions, the current deployment with its controls, health over time, routing, compatibility, runs. */
import type { CompatAnswer } from '../../api/routes/compatibility.ts';
import type { HealthPoint, ServiceBoard } from '../../api/routes/dashboard.ts';
import type { DeploymentAnswer, DeploymentControlPath } from '../../api/routes/deployments.ts';
import type { ReplayList } from '../../api/routes/replays.ts';
import type { ServiceDetail } from '../../api/routes/services.ts';
import type { RoutingAnswer } from '../../api/routes/traffic.ts';
import { get, getOptional, post, type Wire } from './api.ts';
import { HistogramChart, TimeChart, type Line } from './charts.ts';
import { archiveRefusal, deploymentRefusal, restoreRefusal, rollbackRefusal, rollbackTarget, type DeploymentView } from './controls.ts';
import { fill, h, ms, percent, table, time } from './dom.ts';
import { act, controlButton } from './ui.ts';

type ServiceInfo = Wire<ServiceDetail>;
type Deployment = Wire<DeploymentAnswer>;
type Routing = Wire<RoutingAnswer>;
type Board = Wire<ServiceBoard>;
type CompatMatrix = Wire<CompatAnswer>;

const columnName = (c: CompatMatrix['columns'][number]) => (c.kind === 'tool' ? `tool ${c.tool}` : `${c.clientName} ${c.clientVersion} (${c.protocolRevision})`);

export class ServicePage {
  private readonly el: Record<string, HTMLElement> = {};
  private readonly weightInput = h('input', { id: 'weight', type: 'number', min: 0, max: 100, step: 1, value: 50, 'aria-label': 'Canary weight (%)' });
  private readonly charts = {
    success: new TimeChart('Success rate', 'chart-success', '%', [0, 100]),
    rate: new TimeChart('Request rate', 'chart-rate', 'req/s'),
    latency: new TimeChart('Latency p50 / p95 / p99', 'chart-latency', 'ms'),
    histogram: new HistogramChart('Latency histogram', 'chart-histogram'),
  };
  private colors = new Map<string, number>();

  constructor(
    private readonly root: HTMLElement,
    readonly service: string,
  ) {
    const section = (key: string, title: string) => {
      const body = h('div', { class: 'section-body' });
      this.el[key] = body;
      return h('section', { class: 'panel wide', 'aria-labelledby': `s-${key}` }, h('h3', { id: `s-${key}` }, title), body);
    };
    fill(
      root,
      h('h2', {}, `Service ${service}`),
      section('deployment', 'Current deployment'),
      section('controls', 'Controls'),
      section('routing', 'Routing, sessions and breakers'),
      h('section', { class: 'panel wide', 'aria-labelledby': 's-health' }, h('h3', { id: 's-health' }, 'Health per version (last 15 minutes)'), h('div', { class: 'charts' }, Object.values(this.charts).map((c) => c.figure))),
      section('versions', 'Versions'),
      section('compat', 'Compatibility matrix'),
      section('replays', 'Replay reports'),
      section('transforms', 'Transforms'),
      section('runs', 'Runs'),
    );
  }

  private color(version: string): number {
    if (!this.colors.has(version)) this.colors.set(version, this.colors.size);
    return this.colors.get(version)!;
  }

  async refresh(): Promise<void> {
    const name = encodeURIComponent(this.service);
    const [info, deployment, routing, board, compat, replays] = await Promise.all([
      get<ServiceInfo>(`/api/services/${name}`),
      getOptional<Deployment>(`/api/services/${name}/deployment`),
      get<Routing>(`/api/routing/${name}`),
      get<Board>(`/api/services/${name}/dashboard`),
      getOptional<CompatMatrix>(`/api/services/${name}/compatibility`),
      getOptional<Wire<ReplayList>>(`/api/services/${name}/replays?limit=10`),
    ]);
    if (!this.root.isConnected) return;
    this.renderDeployment(deployment, board);
    this.renderControls(info, deployment, routing);
    this.renderRouting(routing, board);
    this.renderCharts(board);
    this.renderVersions(info);
    this.renderCompat(compat);
    this.renderReplays(replays);
    this.renderTransforms(board);
    this.renderRuns(board);
  }

  private renderDeployment(d: Deployment | null, board: Board): void {
    if (!d) return fill(this.el.deployment!, h('p', { class: 'empty' }, 'no deployment yet'));
    const analyses = board.analyses.filter((a) => a.workflowId === d.workflowId);
    const run = board.runs.find((r) => r.workflowId === d.workflowId);
    fill(
      this.el.deployment!,
      h(
        'dl',
        { class: 'facts', 'aria-label': 'Deployment' },
        h('dt', {}, 'version'),
        h('dd', { id: 'dep-version' }, `${d.version}${d.previous ? ` (from ${d.previous})` : ''}`),
        h('dt', {}, 'stage'),
        h('dd', { id: 'dep-stage' }, `${d.stage}${!d.running ? ' (ended)' : d.paused ? ' (paused)' : ''}`),
        h('dt', {}, 'step'),
        h('dd', { id: 'dep-step' }, d.steps.length ? `${Math.min(d.stepIndex + 1, d.steps.length)} of ${d.steps.length} (${d.steps.join(' → ')} %)` : '—'),
        h('dt', {}, 'canary weight'),
        h('dd', { id: 'dep-weight' }, `${d.weight}%`),
        h('dt', {}, 'mode'),
        h('dd', {}, `${d.mode}${d.strategy ? ` (${d.strategy === 'blueGreen' ? 'blue-green' : 'canary steps'})` : ''}`),
        d.reason ? [h('dt', {}, 'reason'), h('dd', {}, d.reason)] : null,
        d.replayGate ? [h('dt', {}, 'replay gate'), h('dd', {}, `${d.replayGate.decision}${d.replayGate.reasons.length ? `: ${d.replayGate.reasons.join('; ')}` : ''}`)] : null,
        h('dt', {}, 'run'),
        h('dd', {}, run?.temporalUi ? h('a', { href: run.temporalUi, target: '_blank', rel: 'noopener' }, d.workflowId) : d.workflowId),
      ),
      h('h4', {}, 'Analysis history'),
      analyses.length === 0
        ? h('p', { class: 'empty' }, 'no analysis yet')
        : table(
            'Analysis history',
            ['At', 'Weight', 'Verdict', 'Requests', 'Success', 'p99', 'Reasons'],
            analyses.map((a) => [
              time(a.time),
              a.details.weight === undefined ? '—' : `${a.details.weight}%`,
              a.details.inconclusive ? 'inconclusive' : a.details.healthy ? 'healthy' : 'unhealthy',
              String(a.details.requests ?? '—'),
              percent(a.details.successRate),
              ms(a.details.p99Ms),
              (a.details.reasons ?? []).join('; ') || '—',
            ]),
          ),
    );
  }

  private renderControls(info: ServiceInfo, d: Deployment | null, routing: Routing): void {
    const view: DeploymentView | null = d && { service: d.service, version: d.version, stage: d.stage, paused: d.paused, running: d.running };
    const name = encodeURIComponent(this.service);
    const control = (c: DeploymentControlPath, label: string, body: () => unknown = () => ({})) =>
      controlButton(`control-${c}`, label, deploymentRefusal(c, this.service, view), () =>
        this.act(`${label} ${this.service}${d ? `@${d.version}` : ''}?`, label, () => post(`/api/services/${name}/${c}`, body())),
      );
    const target = rollbackTarget(info.versions, routing.stable);
    const weightRefusal = deploymentRefusal('set-weight', this.service, view);
    this.weightInput.disabled = weightRefusal !== undefined;
    fill(
      this.el.controls!,
      h(
        'div',
        { class: 'controls', role: 'group', 'aria-label': 'Deployment controls' },
        control('promote', 'Promote'),
        control('pause', 'Pause'),
        control('resume', 'Resume'),
        control('abort', 'Abort', () => ({ reason: 'aborted from the dashboard' })),
        h('span', { class: 'control weight' }, h('label', { for: 'weight' }, 'Weight %'), this.weightInput),
        controlButton('control-set-weight', 'Set weight', weightRefusal, () =>
          this.act(`Set the canary weight of ${this.service} to ${this.weightInput.value}%?`, 'Set weight', () => post(`/api/services/${name}/set-weight`, { weight: Number(this.weightInput.value) })),
        ),
        controlButton('control-rollback', 'Roll back', rollbackRefusal(this.service, info.versions, routing.stable), () =>
          this.act(`Roll ${this.service} back to ${target}?`, 'Roll back', () => post(`/api/services/${name}/rollback`, { version: target })),
          target ? `Roll back to ${target}` : 'Roll back',
        ),
      ),
    );
  }

  private act(question: string, label: string, send: () => Promise<unknown>): Promise<boolean> {
    return act(question, label, send, () => this.refresh());
  }

  private renderRouting(r: Routing, board: Board): void {
    const versions = [...new Set([...Object.keys(r.weights), ...Object.keys(board.clients), ...r.breakers.map((b) => b.version)])].sort();
    fill(
      this.el.routing!,
      table(
        'Routing per version',
        ['Version', 'Weight', 'Sessions', 'Clients', 'Instances', 'Breaker'],
        versions.map((v) => {
          const breaker = r.breakers.find((b) => b.version === v);
          const instances = r.instances.filter((i) => i.version === v && i.state !== 'stopped');
          return [
            `${v}${v === r.stable ? ' (stable)' : ''}${r.pulled.includes(v) ? ' (pulled)' : ''}`,
            h('span', { 'data-weight': v }, `${r.weights[v] ?? 0}%`),
            String(r.sessions[v] ?? board.clients[v]?.sessions ?? 0),
            board.clients[v]?.clients.join(', ') || '—',
            instances.map((i) => `${i.state}${i.restarts ? ` (${i.restarts} restarts)` : ''}`).join(', ') || '—',
            breaker ? `${breaker.state}${breaker.reasons.length ? `: ${breaker.reasons.join('; ')}` : ''}` : '—',
          ];
        }),
      ),
    );
  }

  private renderCharts(board: Board): void {
    const versions = Object.keys(board.series);
    const lines = (field: keyof HealthPoint, scale = 1, suffix = '', dash = false): Line[] =>
      versions.map((v) => ({
        label: `${v}${suffix}`,
        colorIndex: this.color(v),
        dash,
        points: board.series[v]!.map((p) => [p.t, p[field] === null ? null : (p[field] as number) * scale] as [number, number | null]),
      }));
    const latest = (f: (p: HealthPoint) => string) => versions.map((v) => `${v} ${f(board.series[v]!.at(-1)!)}`).join(', ');
    const total = (v: string) => board.series[v]!.reduce((a, p) => a + p.requests, 0);
    this.charts.success.update(lines('successRate', 100), latest((p) => percent(p.successRate)));
    this.charts.rate.update(lines('rate'), versions.map((v) => `${v} ${total(v)} requests`).join(', '));
    this.charts.latency.update([...lines('p50Ms', 1, ' p50', true), ...lines('p95Ms', 1, ' p95', true), ...lines('p99Ms', 1, ' p99')], latest((p) => `p99 ${ms(p.p99Ms)}`));
    this.charts.histogram.update(board.latencyBoundsMs, board.histogram, (v) => this.color(v));
  }

  private renderVersions(info: ServiceInfo): void {
    const name = encodeURIComponent(this.service);
    fill(
      this.el.versions!,
      table(
        'Versions',
        ['Version', 'State', 'Created', 'Archive / restore'],
        [...info.versions].reverse().map((v) => [
          v.version,
          h('span', { class: `state ${v.state}`, 'data-version-state': v.version }, v.state),
          time(v.createdAt),
          h(
            'span',
            {},
            controlButton(`archive-${v.version}`, 'Archive', archiveRefusal(v), () => this.act(`Archive ${this.service}@${v.version}?`, 'Archive', () => post(`/api/services/${name}/versions/${v.version}/archive`)), `Archive ${v.version}`),
            controlButton(`restore-${v.version}`, 'Restore', restoreRefusal(v), () => this.act(`Restore ${this.service}@${v.version} from the archive?`, 'Restore', () => post(`/api/services/${name}/versions/${v.version}/restore`)), `Restore ${v.version}`),
          ),
        ]),
      ),
    );
  }

  private renderCompat(m: CompatMatrix | null): void {
    if (!m) return fill(this.el.compat!, h('p', { class: 'empty' }, 'compatibility matrix not available'));
    if (m.rows.length === 0) return fill(this.el.compat!, h('p', { class: 'empty' }, 'no compatibility results yet'));
    const key = (c: CompatMatrix['columns'][number]) => JSON.stringify(c);
    fill(
      this.el.compat!,
      table(
        'Compatibility matrix',
        ['Version', ...m.columns.map(columnName)],
        m.rows.map((row) => [
          row.version,
          ...m.columns.map((c) => {
            const cells = row.cells.filter((cell) => key(cell.column) === key(c));
            return cells.length ? h('span', {}, cells.map((cell) => h('span', { class: `cell ${cell.status}` }, `${cell.source}: ${cell.status} `))) : '—';
          }),
        ]),
      ),
    );
  }

  private renderReplays(list: Wire<ReplayList> | null): void {
    if (!list) return fill(this.el.replays!, h('p', { class: 'empty' }, 'replay reports not available'));
    if (list.replays.length === 0) return fill(this.el.replays!, h('p', { class: 'empty' }, 'no replays yet'));
    fill(
      this.el.replays!,
      table(
        'Replay reports',
        ['Started', 'Baseline → candidate', 'Trigger', 'Status', 'Progress', 'Outcomes', 'Gate'],
        list.replays.map((r) => {
          const c = r.counts;
          return [
            time(r.startedAt),
            `${r.baseline} → ${r.candidate}`,
            r.trigger,
            `${r.status}${r.durationMs !== undefined ? ` in ${(r.durationMs / 1000).toFixed(1)} s` : ''}${r.error ? `: ${r.error}` : ''}`,
            `${r.done}/${r.total}`,
            `${c.equal} equal, ${c.noise} noise, ${c.differs} differ, ${c.breaks} break, ${c.skipped} skipped`,
            r.gate ? `${r.gate.decision}${r.gate.reasons.length ? `: ${r.gate.reasons.join('; ')}` : ''}` : '—',
          ];
        }),
      ),
    );
  }

  private renderTransforms(board: Board): void {
    if (board.transforms.length === 0) return fill(this.el.transforms!, h('p', { class: 'empty' }, 'no transforms'));
    fill(
      this.el.transforms!,
      table(
        'Transforms',
        ['Transform', 'Forward', 'Reverse', 'Errors', 'Success rate'],
        board.transforms.map((t) => {
          const ok = t.forwardApplied + t.backwardApplied;
          const errors = t.forwardFailed + t.backwardFailed;
          return [t.transformId, String(t.forwardApplied), String(t.backwardApplied), String(errors), percent(ok + errors ? ok / (ok + errors) : null)];
        }),
      ),
    );
  }

  private renderRuns(board: Board): void {
    if (board.runs.length === 0) return fill(this.el.runs!, h('p', { class: 'empty' }, 'no runs yet'));
    fill(
      this.el.runs!,
      table(
        'Runs',
        ['Run', 'Version', 'Started', 'Last event'],
        board.runs.slice(0, 30).map((r) => [
          r.temporalUi ? h('a', { href: r.temporalUi, target: '_blank', rel: 'noopener' }, r.workflowId) : r.workflowId,
          r.version ?? '—',
          time(r.startedAt),
          `${r.lastKind} (${r.lastStatus}) at ${time(r.lastAt)}`,
        ]),
      ),
    );
  }
}
