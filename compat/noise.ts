/**
 * The noise model (Diffy's rule). Stable compared with itself (the capture against a fresh stable
 * instance) shows which paths of a tool's answers change on their own: timestamps, random ids,
 * counters. A path is reported for the candidate only when its candidate-difference rate clearly
 * exceeds its noise rate: by an absolute margin of the tool's requests, and relatively, by a share
 * of the noise rate.
 */
import type { Difference } from './types.ts';

export interface NoiseThresholds {
  /** Candidate rate minus noise rate must exceed this (a share of the tool's compared requests). */
  absolute: number;
  /** ... and exceed the noise rate by this share of it (irrelevant when stable never differs there). */
  relative: number;
}

export const DEFAULT_NOISE: Readonly<NoiseThresholds> = Object.freeze({ absolute: 0.01, relative: 0.2 });

interface PathCounts {
  candidate: number;
  noise: number;
}

/** Array positions are one path: `/result/content/3/text` and `/result/content/0/text` differ alike. */
export function pathShape(path: string): string {
  return path.replace(/\/\d+(?=\/|$)/g, '/*');
}

export class NoiseModel {
  private readonly compared = new Map<string, number>();
  private readonly paths = new Map<string, Map<string, PathCounts>>();

  constructor(private readonly thresholds: NoiseThresholds = DEFAULT_NOISE) {}

  /** One compared request of `tool` (a method name for non-tool requests). */
  observe(tool: string, candidate: readonly Difference[], noise: readonly Difference[]): void {
    this.compared.set(tool, (this.compared.get(tool) ?? 0) + 1);
    let byPath = this.paths.get(tool);
    if (!byPath) this.paths.set(tool, (byPath = new Map()));
    // A request counts once per path, however many array items differed there.
    for (const path of new Set(candidate.map((d) => pathShape(d.path)))) this.countsOf(byPath, path).candidate++;
    for (const path of new Set(noise.map((d) => pathShape(d.path)))) this.countsOf(byPath, path).noise++;
  }

  private countsOf(byPath: Map<string, PathCounts>, path: string): PathCounts {
    let counts = byPath.get(path);
    if (!counts) byPath.set(path, (counts = { candidate: 0, noise: 0 }));
    return counts;
  }

  rates(tool: string, path: string): { candidateRate: number; noiseRate: number } {
    const n = this.compared.get(tool) ?? 0;
    const counts = this.paths.get(tool)?.get(pathShape(path));
    if (!n || !counts) return { candidateRate: 0, noiseRate: 0 };
    return { candidateRate: counts.candidate / n, noiseRate: counts.noise / n };
  }

  /** Diffy's rule for one path of one tool. */
  significant(tool: string, path: string): boolean {
    const { candidateRate, noiseRate } = this.rates(tool, path);
    const excess = candidateRate - noiseRate;
    if (excess <= this.thresholds.absolute) return false;
    return noiseRate === 0 || excess / noiseRate > this.thresholds.relative;
  }

  /** Every (tool, path) seen, with its rates and verdict. */
  verdicts(): { tool: string; path: string; candidateRate: number; noiseRate: number; significant: boolean }[] {
    const out = [];
    for (const [tool, byPath] of this.paths) {
      for (const path of byPath.keys()) out.push({ tool, path, ...this.rates(tool, path), significant: this.significant(tool, path) });
    }
    return out;
  }
}
