/** Service names are folder names and URL segments: lower-case letters, digits and dashes. */
export const SERVICE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

export function isServiceName(name: string): boolean {
  return SERVICE_NAME.test(name);
}
