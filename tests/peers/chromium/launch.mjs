// Headless Chromium as the viewer scripts (watch.mjs, glass.mjs) start it: a fresh profile, WebRTC
// allowed on loopback, autoplay without a gesture, timers at full rate in a hidden page.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export async function launch(executable, name) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), `whipcast-${name}-`));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: executable, headless: true, timeout: 30000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
      '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required',
      '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
      '--disable-backgrounding-occluded-windows'],
  });
  const close = async () => {
    await Promise.race([context.close().catch(() => {}), new Promise(r => setTimeout(r, 5000))]);
    fs.rmSync(userDataDir, { recursive: true, force: true });
  };
  return { context, close };
}
