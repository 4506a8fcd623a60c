/**
 * Serves the dashboard's static build (dashboard/dist, made by `tools/setup.sh`) at `/`, behind the
 * same Host/Origin guard as /api and /mcp. Its CSP allows nothing but this origin, so the page
 * works offline and a stray CDN reference would fail loudly in the browser tests.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { Router, type Response } from 'express';
import { repoRoot } from '../stack/binaries.ts';
import { securityGuard, type SecuritySettings } from './gateway/security.ts';

export const DASHBOARD_DIST = path.join(repoRoot, 'dashboard', 'dist');

const CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

function forbidPage(res: Response, message: string): void {
  res.status(403).type('text/plain').send(`Forbidden: ${message}`);
}

export function dashboardSite(settings: SecuritySettings, dist = DASHBOARD_DIST): Router {
  const router = Router();
  router.use(securityGuard(settings, { forbid: forbidPage }));
  router.use((_req, res, next) => {
    res.set({ 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' });
    next();
  });
  router.use(express.static(dist, { index: 'index.html', fallthrough: true }));
  router.get('/', (_req, res) => {
    // Only reached when the build is missing (static answers / with index.html otherwise).
    res.status(503).type('text/plain').send(`the dashboard is not built (${existsSync(dist) ? 'no index.html in' : 'missing'} ${dist}): run \`bash tools/setup.sh\``);
  });
  return router;
}
