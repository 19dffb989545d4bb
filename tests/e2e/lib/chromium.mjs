// A real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core
// over CDP) for the sign-in pages: what a person's browser does, JavaScript, CSP and
// all. A fresh profile per launch; TLS errors ignored (the gateway's certificate is
// self-signed); screenshots go to build/e2e-artifacts/<name>.png (git-ignored).
//
//   const why = chromiumMissing();            // a reason to t.skip(), or null
//   const ch = await launchChromium();
//   const cb = ch.interceptCallback('http://127.0.0.1:5555/callback');
//   await ch.open(authorizeUrl);
//   await ch.fill('#email', 'ann@example.com'); await ch.fill('#password', 'pw');
//   await ch.screenshot('login');
//   await ch.click('#signin');
//   const { code, state } = await cb;          // the redirect_uri's query, answered 200 here
//   await ch.close();
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { REPO_ROOT, tmpDir, within } from './harness.mjs';

export const CHROMIUM = process.env.E2E_CHROMIUM ?? '/usr/bin/chromium';
export const SCREENSHOT_DIR = path.join(REPO_ROOT, 'build/e2e-artifacts');
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** Why Chromium cannot run here (a reason to skip), or null. */
export function chromiumMissing() {
  try {
    fs.accessSync(CHROMIUM, fs.constants.X_OK);
    return null;
  } catch {
    return `${CHROMIUM} is missing (scripts/deps installs the Debian package chromium)`;
  }
}

/**
 * Launches Chromium with a fresh profile. options: timeoutMs (each action and navigation,
 * default 15000), viewport.
 * Returns { context, page, navigations, open(url), fill(sel, value), click(sel), text(sel),
 *           url(), waitForUrl(pred), interceptCallback(redirectUri), screenshot(name), close() }.
 * navigations: every main-frame document response, [{ url, status, location }].
 */
export async function launchChromium({ timeoutMs = 15_000, viewport = { width: 900, height: 700 } } = {}) {
  const why = chromiumMissing();
  if (why) throw new Error(why);
  const profile = tmpDir('mcpgate-chromium-');
  const context = await within(30_000, chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    ignoreHTTPSErrors: true,
    viewport,
    timeout: 30_000,
  }), 'launching chromium');
  context.setDefaultTimeout(timeoutMs);
  context.setDefaultNavigationTimeout(timeoutMs);
  const page = context.pages()[0] ?? await context.newPage();
  const navigations = [];
  page.on('response', (r) => {
    const req = r.request();
    if (req.isNavigationRequest() && req.frame() === page.mainFrame()) {
      navigations.push({ url: r.url(), status: r.status(), location: r.headers().location ?? null });
    }
  });
  let closed = false;
  return {
    context,
    page,
    navigations,
    async open(url) { return page.goto(String(url), { waitUntil: 'load' }); },
    async fill(selector, value) { await page.fill(selector, value); },
    async click(selector) { await page.click(selector); },
    async text(selector) { return (await page.textContent(selector))?.trim(); },
    url: () => page.url(),
    async waitForUrl(pred) { await page.waitForURL(pred); return page.url(); },
    /**
     * Answers the navigation to redirectUri (same origin and path) with a small page,
     * without a server there, and resolves its query: { code, state, iss, error, params, url }.
     */
    interceptCallback(redirectUri) {
      const target = new URL(String(redirectUri));
      return new Promise((resolve) => {
        page.route((u) => u.origin === target.origin && u.pathname === target.pathname, async (route) => {
          const u = new URL(route.request().url());
          const params = Object.fromEntries(u.searchParams);
          resolve({ url: u.href, params, code: params.code, state: params.state, iss: params.iss,
            error: params.error, error_description: params.error_description });
          await route.fulfill({ status: 200, contentType: 'text/html', body: '<!DOCTYPE html><title>callback</title><p id="done">callback received</p>' });
        });
      });
    },
    /** Saves a full-page PNG to build/e2e-artifacts/<name>.png; resolves its path. */
    async screenshot(name) {
      fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
      const file = path.join(SCREENSHOT_DIR, `${name.replace(/[^A-Za-z0-9_.-]+/g, '_')}.png`);
      await page.screenshot({ path: file, fullPage: true });
      return file;
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await within(15_000, context.close(), 'closing chromium');
      } finally {
        fs.rmSync(profile, { recursive: true, force: true });
      }
    },
  };
}
