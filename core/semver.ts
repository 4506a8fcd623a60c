/** x.y.z comparison and bumping; versions are validated by the manifest schema before they get here. */
export function parseVersion(v: string): [number, number, number] {
  const parts = v.split('.').map(Number);
  if (parts.length !== 3 || parts.some((n) => !Number.isInteger(n) || n < 0)) throw new Error(`not an x.y.z version: ${v}`);
  return parts as [number, number, number];
}

export function compareVersions(a: string, b: string): number {
  const [pa, pb] = [parseVersion(a), parseVersion(b)];
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
  return 0;
}

export function bumpPatch(v: string): string {
  const [major, minor, patch] = parseVersion(v);
  return `${major}.${minor}.${patch + 1}`;
}

/**
 * The number of a newly staged version: the manifest's own version when it is above every version
 * staged so far (the developer bumped it), else the highest staged version with its patch bumped.
 */
export function nextVersion(manifestVersion: string, staged: string[]): string {
  const highest = staged.reduce<string | undefined>((max, v) => (max === undefined || compareVersions(v, max) > 0 ? v : max), undefined);
  if (highest === undefined || compareVersions(manifestVersion, highest) > 0) return manifestVersion;
  return bumpPatch(highest);
}
