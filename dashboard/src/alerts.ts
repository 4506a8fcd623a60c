/**
 * The overview's alerts panel: alerts (a silenced one says so, and until when), the silences in
 * force, and the controls to make and end silences. The panel and its form are kept across
 * refreshes, only the lists are redrawn, so a reason being typed survives the refresh every 2 s.
 */
import type { AlertView } from '../../alerts/types.ts';
import type { AlertsAnswer } from '../../api/routes/alerts.ts';
import { del, post, type Wire } from './api.ts';
import { endSilenceRefusal, silenceRefusal } from './controls.ts';
import { fill, h, moment, table } from './dom.ts';
import { act, controlButton } from './ui.ts';

const matcher = (m: { service?: string; rule?: string }) => `${m.service ?? 'all services'} / ${m.rule ?? 'all rules'}`;

/** Keeps a select's options in step with a list without losing what is chosen in it. */
function syncOptions(select: HTMLSelectElement, values: readonly string[], allLabel: string): void {
  const wanted = ['', ...values];
  if (wanted.join('\n') === [...select.options].map((o) => o.value).join('\n')) return;
  const chosen = select.value;
  fill(select, wanted.map((v) => h('option', { value: v }, v || allLabel)));
  select.value = wanted.includes(chosen) ? chosen : '';
}

export class AlertsPanel {
  readonly el: HTMLElement;
  private readonly alertList = h('div', { class: 'section-body' });
  private readonly silenceList = h('div', { class: 'section-body' });
  private readonly serviceSelect = h('select', { id: 'silence-service' });
  private readonly ruleSelect = h('select', { id: 'silence-rule' });
  private readonly minutesInput = h('input', { id: 'silence-minutes', type: 'number', min: 1, step: 1, value: 60 });
  private readonly commentInput = h('input', { id: 'silence-comment', type: 'text', autocomplete: 'off', placeholder: 'why (kept with the silence)' });
  private readonly createSlot = h('span');
  private readonly form: HTMLElement;

  constructor(private readonly refresh: () => Promise<void>) {
    const field = (id: string, label: string, input: HTMLElement) => h('span', { class: 'control' }, h('label', { for: id }, label), input);
    this.form = h(
      'div',
      { class: 'controls', role: 'group', 'aria-label': 'New silence' },
      field('silence-service', 'Service', this.serviceSelect),
      field('silence-rule', 'Rule', this.ruleSelect),
      field('silence-minutes', 'For (minutes)', this.minutesInput),
      field('silence-comment', 'Reason', this.commentInput),
      this.createSlot,
    );
    for (const input of [this.serviceSelect, this.ruleSelect, this.minutesInput, this.commentInput]) input.addEventListener('input', () => this.renderCreate());
    this.el = h(
      'section',
      { class: 'panel', 'aria-labelledby': 'p-alerts' },
      h('h3', { id: 'p-alerts' }, 'Alerts'),
      this.alertList,
      h('section', { 'aria-labelledby': 'p-silences' }, h('h4', { id: 'p-silences' }, 'Silences'), this.silenceList, this.form),
    );
    this.renderCreate();
  }

  /** null: the API has no alerts (GET /api/alerts answered 404). */
  update(answer: Wire<AlertsAnswer> | null, services: readonly string[]): void {
    this.form.hidden = answer === null;
    if (!answer) {
      fill(this.alertList, h('p', { class: 'empty' }, 'alerts not available'));
      fill(this.silenceList);
      return;
    }
    syncOptions(this.serviceSelect, [...new Set([...services, ...answer.alerts.map((a) => a.service)])].sort(), 'all services');
    syncOptions(this.ruleSelect, answer.rules, 'all rules');
    const byId = new Map(answer.silences.map((s) => [s.silenceId, s]));
    fill(
      this.alertList,
      answer.alerts.length === 0
        ? h('p', { class: 'empty' }, 'no alerts')
        : h(
            'ul',
            { class: 'alerts' },
            answer.alerts.map((a) => {
              const silence = a.silence ? byId.get(a.silence) : undefined;
              return h(
                'li',
                { class: `alert ${a.state}`, 'data-alert-id': a.alertId, 'data-silenced': silence?.silenceId },
                h('strong', {}, a.state),
                ` ${a.service} ${a.rule}: ${a.summary} `,
                silence
                  ? h('span', { class: 'badge silenced' }, `silenced until ${moment(silence.expiresAt)} (${silence.comment})`)
                  : a.state === 'resolved'
                    ? null
                    : h('button', { type: 'button', class: 'link', 'aria-label': `Silence ${a.alertId}…`, onclick: () => this.prefill(a) }, 'Silence…'),
              );
            }),
          ),
    );
    const now = Date.now();
    fill(
      this.silenceList,
      answer.silences.length === 0
        ? h('p', { class: 'empty' }, 'no silences')
        : table(
            'Silences',
            ['Matches', 'Reason', 'Since', 'Until', 'Silencing now', ''],
            answer.silences.map((s) => [
              matcher(s),
              s.comment,
              moment(s.createdAt),
              moment(s.expiresAt),
              answer.alerts.filter((a) => a.silence === s.silenceId).map((a) => a.alertId).join(', ') || '—',
              controlButton(
                `silence-end-${s.silenceId}`,
                'End',
                endSilenceRefusal(s.expiresAt, now),
                () => void act(`End the silence of ${matcher(s)} ("${s.comment}") now?`, 'End silence', () => del(`/api/alerts/silences/${encodeURIComponent(s.silenceId)}`), this.refresh),
                `End silence of ${matcher(s)}: ${s.comment}`,
              ),
            ]),
          ),
    );
  }

  /** A firing alert's "Silence…": the form is set to its service and rule, the reason is what is left to say. */
  private prefill(a: Pick<AlertView, 'service' | 'rule'>): void {
    this.serviceSelect.value = a.service;
    this.ruleSelect.value = a.rule;
    this.renderCreate();
    this.commentInput.focus();
  }

  private renderCreate(): void {
    const draft = { comment: this.commentInput.value.trim(), minutes: Number(this.minutesInput.value) };
    const match = { ...(this.serviceSelect.value ? { service: this.serviceSelect.value } : {}), ...(this.ruleSelect.value ? { rule: this.ruleSelect.value } : {}) };
    fill(
      this.createSlot,
      controlButton('silence-create', 'Add silence', silenceRefusal(draft), async () => {
        const question = `Silence ${matcher(match)} for ${draft.minutes} min ("${draft.comment}")?`;
        if (!(await act(question, 'Silence', () => post('/api/alerts/silences', { ...match, comment: draft.comment, durationSec: draft.minutes * 60 }), this.refresh))) return;
        this.commentInput.value = '';
        this.renderCreate();
      }),
    );
  }
}
