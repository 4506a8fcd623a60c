/**
 * Loading a service's transforms: every `transforms/*.ts` (or .js / .mjs) of a version's folder,
 * default export checked against the TransformDefinition shape. Files are TypeScript run through
 * tsx, so a service needs no build step for them; the shape is checked when loaded, since a
 * service folder cannot import mcpship's types.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { tsImport } from 'tsx/esm/api';
import { z } from 'zod';
import type { LoadedTransform, TransformDefinition } from './types.ts';

export const TRANSFORMS_DIR = 'transforms';
const EXTENSIONS = new Set(['.ts', '.mts', '.js', '.mjs']);

/** A transform file that does not load or does not declare a transform; the message says which and why. */
export class TransformLoadError extends Error {
  override name = 'TransformLoadError';
}

const VERSION = z.string().regex(/^\d+\.\d+\.\d+$/, 'an x.y.z version');
const fn = z.function();
const definitionSchema = z
  .object({
    from: VERSION,
    to: VERSION,
    description: z.string().min(1),
    sideEffects: z.boolean().optional(),
    requestForward: fn.optional(),
    requestInverse: fn.optional(),
    responseBackward: fn.optional(),
    responseInverse: fn.optional(),
    toolsListBackward: fn.optional(),
    notificationBackward: fn.optional(),
    notificationInverse: fn.optional(),
  })
  .strict()
  .refine((d) => d.requestForward || d.responseBackward || d.toolsListBackward || d.notificationBackward || d.sideEffects, {
    message: 'declares nothing: give at least one of requestForward, responseBackward, toolsListBackward, notificationBackward, or sideEffects',
  })
  .refine((d) => !d.requestInverse || d.requestForward, { message: 'requestInverse without requestForward' })
  .refine((d) => !d.responseInverse || d.responseBackward, { message: 'responseInverse without responseBackward' })
  .refine((d) => !d.notificationInverse || d.notificationBackward, { message: 'notificationInverse without notificationBackward' });

/** Checks one module's default export; `id` names the file in errors. */
export function checkDefinition(id: string, exported: unknown): LoadedTransform {
  const parsed = definitionSchema.safeParse(exported);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
    throw new TransformLoadError(`${id}: not a transform (${issues})`);
  }
  // zod wraps functions it checks; the author's own functions are kept.
  return { ...(exported as TransformDefinition), id };
}

/** The transform files of a folder, sorted; none when it has no transforms/ folder. */
export async function transformFiles(serviceDir: string): Promise<string[]> {
  const dir = path.join(serviceDir, TRANSFORMS_DIR);
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  return names.filter((n) => EXTENSIONS.has(path.extname(n)) && !n.endsWith('.d.ts') && !n.includes('.test.')).sort().map((n) => `${TRANSFORMS_DIR}/${n}`);
}

/** Loads every transform of a version's folder. Throws TransformLoadError naming the file that failed. */
export async function loadTransforms(serviceDir: string): Promise<LoadedTransform[]> {
  const out: LoadedTransform[] = [];
  for (const id of await transformFiles(serviceDir)) {
    let mod: { default?: unknown };
    try {
      mod = (await tsImport(pathToFileURL(path.join(serviceDir, id)).href, import.meta.url)) as { default?: unknown };
    } catch (err) {
      throw new TransformLoadError(`${id}: does not load (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
    }
    out.push(checkDefinition(id, mod.default));
  }
  return out;
}
