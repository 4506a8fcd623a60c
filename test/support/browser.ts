/**
 * The browser tests' browser: Debian's chromium driven by playwright-core, one page whose console
 * errors are collected (a test ends by asserting there were none), except the failed requests a
 * test provokes on purpose (Chrome logs every HTTP error as a console error).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { repoRoot } from '../../stack/binaries.ts';

const CHROMIUM = process.env.MCPSHIP_CHROMIUM ?? '/usr/bin/chromium';

export interface BrowserPage {
  browser: Browser;
  page: Page;
  consoleErrors: string[];
  /** URLs whose failed loads are expected: push before provoking one, pop after. */
  provoked: RegExp[];
}

/** Called first in a file's before(), so that a missing browser or build fails before the stack starts. */
export function assertBrowserReady(): void {
  assert.ok(existsSync(CHROMIUM), `no chromium at ${CHROMIUM}: apt-get install chromium (or set MCPSHIP_CHROMIUM)`);
  assert.ok(existsSync(path.join(repoRoot, 'dashboard', 'dist', 'index.html')), 'the dashboard is not built: run bash tools/setup.sh');
}

export async function openBrowserPage(): Promise<BrowserPage> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const consoleErrors: string[] = [];
  const provoked: RegExp[] = [];
  page.on('pageerror', (err) => consoleErrors.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const url = msg.location().url;
    if (/Failed to load resource/.test(msg.text()) && provoked.some((re) => re.test(url))) return;
    consoleErrors.push(`${msg.text()} (${url})`);
  });
  return { browser, page, consoleErrors, provoked };
}
