// parse-prometheus-text-format ships no types: this is the shape it returns (prom2json's).
// @ts-expect-error no declaration file
import parse from 'parse-prometheus-text-format';

export interface PromSample {
  labels?: Record<string, string>;
  value?: string;
  /** Histograms: cumulative count per upper bound. */
  buckets?: Record<string, string>;
  count?: string;
  sum?: string;
}

export interface PromFamily {
  name: string;
  help: string;
  type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
  metrics: PromSample[];
}

/** Parses a Prometheus text exposition into metric families. */
export const parsePrometheusText = parse as (text: string) => PromFamily[];

/**
 * Every sample of an exposition by series name (`x_bucket`, `x_count` apart), labels kept. The
 * parser folds all label sets of a histogram into one unlabelled sample, so histograms are parsed
 * here as untyped series; parsePrometheusText still checks the types.
 */
export function seriesOf(text: string): Map<string, PromSample[]> {
  const series = new Map<string, PromSample[]>();
  for (const f of parsePrometheusText(text.replace(/^# TYPE (\S+) histogram$/gm, '# TYPE $1 untyped'))) {
    series.set(f.name, [...(series.get(f.name) ?? []), ...f.metrics]);
  }
  return series;
}
