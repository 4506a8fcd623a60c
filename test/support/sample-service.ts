import { cp, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot } from '../../stack/binaries.ts';

/** Copies examples/services/<sample> to `dest`, without node_modules and dist. */
export async function copySample(sample: string, dest: string): Promise<void> {
  await cp(path.join(repoRoot, 'examples', 'services', sample), dest, { recursive: true, filter: (src) => !/node_modules|dist/.test(src) });
}

/** Reads a JSON file, lets `edit` change it and writes it back, as a developer's save would. */
export async function editJson(file: string, edit: (json: Record<string, any>) => void): Promise<void> {
  const json = JSON.parse(await readFile(file, 'utf8'));
  edit(json);
  await writeFile(file, JSON.stringify(json, null, 2));
}

export interface AddServiceOptions {
  /** The folder under examples/services to copy. */
  sample: string;
  /** The new service's name: its folder under the services root and its manifest's `name`. */
  service: string;
  servicesDir: string;
  stateDir: string;
  /** Fields set in mcp.json besides `name` (they win over the sample's own). */
  manifest?: Record<string, unknown>;
  /** Changes to the copy (its folder) before it is moved in. */
  patch?: (dir: string) => Promise<void>;
}

/**
 * Copies a sample in beside the services root, patches and names it, then moves it in at once, so
 * the watcher never sees half a copy. Returns the service's folder under the services root.
 */
export async function addSampleService(opts: AddServiceOptions): Promise<string> {
  const staging = path.join(opts.stateDir, 'incoming', opts.service);
  await copySample(opts.sample, staging);
  await opts.patch?.(staging);
  await editJson(path.join(staging, 'mcp.json'), (manifest) => Object.assign(manifest, { name: opts.service, ...opts.manifest }));
  await mkdir(opts.servicesDir, { recursive: true });
  const dir = path.join(opts.servicesDir, opts.service);
  await rename(staging, dir);
  return dir;
}
