/**
 * Charts drawn with uPlot (canvas, ~50 kB, no dependencies). Each chart sits in a <figure> whose
 * caption states the latest values in words: what a screen reader (and a browser test) can read of
 * a canvas.
 */
import uPlot from 'uplot';
import { h } from './dom.ts';

const COLORS = ['#2f6fdf', '#e0662f', '#2c9c5a', '#9b4fd0', '#c9a227', '#d0436e'];

export interface Line {
  label: string;
  /** [epoch ms, value] pairs. */
  points: [number, number | null][];
  dash?: boolean;
  colorIndex: number;
}

function width(el: HTMLElement): number {
  return Math.max(320, Math.min(720, el.clientWidth || 560));
}

/** A chart that keeps its uPlot while the set of series stays the same, and is rebuilt when it changes. */
abstract class Chart {
  readonly figure: HTMLElement;
  protected readonly plotEl: HTMLElement;
  protected readonly caption: HTMLElement;
  protected plot: uPlot | undefined;
  private shape = '';

  constructor(
    readonly title: string,
    id: string,
  ) {
    this.plotEl = h('div', { class: 'plot' });
    this.caption = h('figcaption', { id: `${id}-caption` });
    this.figure = h('figure', { class: 'chart', id, 'aria-labelledby': `${id}-caption` }, h('h4', {}, title), this.plotEl, this.caption);
  }

  protected draw(shape: string, opts: () => Omit<uPlot.Options, 'width' | 'height'>, data: uPlot.AlignedData): void {
    if (shape !== this.shape || !this.plot) {
      this.plot?.destroy();
      this.plot = new uPlot({ ...opts(), width: width(this.figure), height: 200 }, data, this.plotEl);
      this.shape = shape;
    } else {
      this.plot.setData(data);
    }
    this.figure.dataset.points = String(data[0]?.length ?? 0);
  }
}

export class TimeChart extends Chart {
  constructor(
    title: string,
    id: string,
    private readonly unit: string,
    /** A fixed y range (a success rate is 0–100 %, however flat the line). */
    private readonly range?: [number, number],
  ) {
    super(title, id);
  }

  update(lines: Line[], summary: string): void {
    this.caption.textContent = `${this.title}: ${summary || 'no traffic yet'}`;
    const xs = [...new Set(lines.flatMap((l) => l.points.map(([t]) => t)))].sort((a, b) => a - b);
    const data: uPlot.AlignedData = [xs.map((t) => t / 1000), ...lines.map((l) => {
      const byT = new Map(l.points);
      return xs.map((t) => byT.get(t) ?? null);
    })];
    this.draw(
      lines.map((l) => l.label).join('|'),
      () => ({
        ...(this.range ? { scales: { y: { range: this.range } } } : {}),
        series: [{}, ...lines.map((l) => ({ label: l.label, stroke: COLORS[l.colorIndex % COLORS.length], width: 2, spanGaps: false, ...(l.dash ? { dash: [4, 4] } : {}) }))],
        axes: [{}, { label: this.unit, size: 60 }],
        legend: { live: false },
      }),
      data,
    );
  }
}

export class HistogramChart extends Chart {
  update(bounds: readonly number[], perVersion: Record<string, number[]>, colorOf: (version: string) => number): void {
    const versions = Object.keys(perVersion).filter((v) => perVersion[v]!.some((n) => n > 0));
    const slots = bounds.length + 1;
    // Only the slots up to the last one with samples: a 60 s tail of empty bars says nothing.
    let last = 0;
    for (const v of versions) perVersion[v]!.forEach((n, i) => n > 0 && (last = Math.max(last, i)));
    const used = Math.min(slots, last + 2);
    const label = (i: number) => (i < bounds.length ? `≤${bounds[i]}` : `>${bounds[bounds.length - 1]}`);
    this.caption.textContent = versions.length
      ? `${this.title}: ${versions.map((v) => `${v} ${perVersion[v]!.reduce((a, b) => a + b, 0)} requests`).join(', ')}`
      : `${this.title}: no traffic yet`;
    const data: uPlot.AlignedData = [Array.from({ length: used }, (_, i) => i), ...versions.map((v) => perVersion[v]!.slice(0, used))];
    const bars = uPlot.paths.bars!({ size: [0.8 / Math.max(1, versions.length), 60] });
    this.draw(
      versions.join('|') + `#${used}`,
      () => ({
        scales: { x: { time: false } },
        series: [{ label: 'ms' }, ...versions.map((v) => ({ label: v, fill: `${COLORS[colorOf(v) % COLORS.length]}99`, stroke: COLORS[colorOf(v) % COLORS.length], paths: bars, points: { show: false } }))],
        axes: [{ values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? label(t) : '')), label: 'latency (ms)' }, { label: 'requests', size: 50 }],
        legend: { live: false },
      }),
      data,
    );
  }
}
