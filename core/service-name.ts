import { SERVICE_NAME_PATTERN } from './manifest.ts';

/** Service names are folder names and URL segments (the pattern lives with the manifest schema). */
export function isServiceName(name: string): boolean {
  return SERVICE_NAME_PATTERN.test(name);
}
