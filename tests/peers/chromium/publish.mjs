#!/usr/bin/env node
// Headless Chromium as a WHIP publisher, for whipcast's integration tests.
//
//   node publish.mjs --url http://127.0.0.1:PORT/whip/STREAM --codec AV1|H264|VP8|VP9 \
//        --seconds N [--token T] [--audio] [--fps 30] [--timeout S] [--chromium PATH]
//        [--ice-restart-at S]   (restartIce() S seconds into publishing: PATCH, RFC 9725 4.4.2)
//        [--simulcast N]        (N layers: rids f, h, q at full, half and quarter size)
//        [--scalability-mode M] (SVC: one stream with layers, e.g. L1T3, L3T3)
//   node publish.mjs --page-url URL --codec C --seconds N [--token T] [--stream S] [--audio]
//        (open a whipcastsrc publish page and use its form as a person would)
//
// Serves whipcastsrc's publish page (gst-plugin-whipsrc/src/publish-page.html)
// from its own HTTP server on 127.0.0.1 (another origin
// than the WHIP server, so CORS is exercised), drives it with playwright-core,
// prints ONE JSON line on stdout, logs to stderr, exits 0 only when ok.
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));

function usage(msg) {
  if (msg) console.error('error: ' + msg);
  console.error('usage: node publish.mjs --url URL --codec AV1|H264|VP8|VP9 --seconds N [--token T] [--audio] [--fps F] [--size WxH] [--timeout S] [--ice-restart-at S] [--simulcast N] [--scalability-mode M]');
  console.error('       node publish.mjs --page-url URL --codec C --seconds N [--token T] [--stream S] [--audio]');
  process.stdout.write(JSON.stringify({ ok: false, error: 'usage: ' + (msg || '') }) + '\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { codec: 'AV1', seconds: 10, fps: 30, width: 1280, height: 720, audio: false, chromium: process.env.CHROMIUM || '/usr/bin/chromium' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => { if (i + 1 >= argv.length) usage(`${a} needs a value`); return argv[++i]; };
    switch (a) {
      case '--url': o.url = val(); break;
      case '--page-url': o.pageUrl = val(); break;
      case '--stream': o.stream = val(); break;
      case '--codec': o.codec = val().toUpperCase(); break;
      case '--seconds': o.seconds = Number(val()); break;
      case '--token': o.token = val(); break;
      case '--audio': o.audio = true; break;
      case '--fps': o.fps = Number(val()); break;
      case '--size': [o.width, o.height] = val().split('x').map(Number); break;
      case '--ice-restart-at': o.iceRestartAt = Number(val()); break;
      case '--simulcast': o.simulcast = Number(val()); break;
      case '--scalability-mode': o.scalabilityMode = val(); break;
      case '--timeout': o.timeout = Number(val()); break;
      case '--chromium': o.chromium = val(); break;
      case '-h': case '--help': usage();
      default: usage('unknown argument ' + a);
    }
  }
  if (!o.url && !o.pageUrl) usage('--url or --page-url is required');
  if (!['AV1', 'H264', 'VP8', 'VP9'].includes(o.codec)) usage('bad --codec ' + o.codec);
  if (!(o.seconds >= 0)) usage('bad --seconds');
  if (!(o.fps > 0)) usage('bad --fps');
  if (!(o.width > 0 && o.height > 0)) usage('bad --size (WxH)');
  if (o.simulcast !== undefined && ![1, 2, 3].includes(o.simulcast)) usage('--simulcast takes 1 to 3 layers');
  if (o.iceRestartAt !== undefined && !(o.iceRestartAt > 0 && o.iceRestartAt < o.seconds)) usage('--ice-restart-at must be within --seconds');
  if (!o.timeout) o.timeout = o.seconds + 60;
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const log = (...a) => console.error('[publish.mjs]', ...a);

let printed = false;
function finish(result) {
  if (!printed) {
    printed = true;
    process.stdout.write(JSON.stringify(result) + '\n');
  }
  return result.ok ? 0 : 1;
}

// Tiny static server for the page, on another origin than the WHIP server.
function servePage() {
  const html = fs.readFileSync(path.join(here, '../../../gst-plugin-whipsrc/src/publish-page.html'));
  const srv = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname === '/' || u.pathname === '/publish.html') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(html);
    } else {
      res.writeHead(404); res.end();
    }
  });
  return new Promise((resolve, reject) => {
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

function chromiumArgs(fps) {
  return [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-dev-shm-usage',
    `--use-fake-device-for-media-stream=fps=${fps}`, '--use-fake-ui-for-media-stream',
    '--allow-loopback-in-peer-connection',
    // keep timers running at full rate in a hidden/headless page
    '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
    '--disable-backgrounding-occluded-windows',
  ];
}

let context = null;
let userDataDir = null;
let pageServer = null;

async function cleanup() {
  if (context) {
    const c = context; context = null;
    await Promise.race([c.close().catch(() => {}), new Promise(r => setTimeout(r, 5000))]);
  }
  if (pageServer) { pageServer.close(); pageServer = null; }
  if (userDataDir) { try { fs.rmSync(userDataDir, { recursive: true, force: true }); } catch (_) {} userDataDir = null; }
}

async function main() {
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'whipcast-chromium-'));
  log(`launching ${opts.chromium} (profile ${userDataDir})`);
  // launchPersistentContext = a fresh --user-data-dir (Playwright refuses it in args).
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: opts.chromium,
    headless: true,
    args: chromiumArgs(opts.fps),
    permissions: ['camera', 'microphone'],
    timeout: 30000,
  });
  const page = context.pages()[0] || await context.newPage();
  const consoleLines = [];
  page.on('console', m => { const l = `${m.type()}: ${m.text()}`; consoleLines.push(l); console.error('[chromium] ' + l); });
  page.on('pageerror', e => { const l = `pageerror: ${e.message}`; consoleLines.push(l); console.error('[chromium] ' + l); });

  if (opts.pageUrl) {
    // The page whipcastsrc serves: fill in its form and press its buttons.
    const resp = await page.goto(opts.pageUrl, { timeout: 15000 });
    if (!resp || !resp.ok()) return { ok: false, error: `GET ${opts.pageUrl}: ${resp ? resp.status() : 'no response'}` };
    await page.waitForFunction(() => document.querySelectorAll('#codec option').length > 0, null, { timeout: 10000 });
    await page.selectOption('#codec', opts.codec);
    if (opts.stream) await page.fill('#stream', opts.stream);
    if (opts.token) await page.fill('#token', opts.token);
    await page.setChecked('#audio', opts.audio);
    const streams = await page.$$eval('#streams option', os => os.map(o => o.value));
    await page.click('#publish');
    await page.waitForFunction(() => ['live', 'error'].includes(window.whipcastPage.state), null, { timeout: 30000 });
    const live = await page.evaluate(() => ({ state: window.whipcastPage.state, error: window.whipcastPage.error }));
    if (live.state !== 'live') return { ok: false, mode: 'form', error: live.error, streams };
    await page.waitForTimeout(opts.seconds * 1000);
    const statusWhileLive = await page.textContent('#status');
    await page.click('#stop');
    await page.waitForFunction(() => ['stopped', 'error'].includes(window.whipcastPage.state), null, { timeout: 15000 });
    const result = await page.evaluate(() => window.whipcastPage.result);
    const { ok, codec, framesSent, postStatus, deleteStatus, error } = result;
    return { ok, mode: 'form', codec, framesSent, postStatus, deleteStatus, ...(error ? { error } : {}), streams, statusWhileLive };
  }

  pageServer = await servePage();
  const pageUrl = `http://127.0.0.1:${pageServer.address().port}/publish.html`;
  log('page at ' + pageUrl + ', WHIP endpoint ' + opts.url);
  await page.goto(pageUrl, { timeout: 15000 });
  const result = await page.evaluate(o => window.whipPublish(o), {
    url: opts.url, codec: opts.codec, seconds: opts.seconds, token: opts.token || null,
    audio: opts.audio, fps: opts.fps, width: opts.width, height: opts.height, iceRestartAt: opts.iceRestartAt || 0,
    simulcast: opts.simulcast || 1, scalabilityMode: opts.scalabilityMode || null,
  });
  // Put the summary fields first in the JSON line.
  const { ok, codec, framesSent, framesEncoded, packetsSent, bytesSent, keyFramesEncoded, audioPacketsSent,
    postStatus, deleteStatus, location, error, ...rest } = result;
  const v = (result.stats && result.stats.video) || {};
  return { ok, codec, framesSent, framesEncoded, packetsSent, bytesSent, keyFramesEncoded, audioPacketsSent,
    postStatus, deleteStatus, location, ...(error ? { error } : {}),
    frameWidth: v.frameWidth, frameHeight: v.frameHeight, scalabilityMode: v.scalabilityMode, pageOrigin: new URL(pageUrl).origin, ...rest };
}

const overall = setTimeout(async () => {
  log(`overall timeout (${opts.timeout} s)`);
  const code = finish({ ok: false, error: `overall timeout after ${opts.timeout} s` });
  await cleanup();
  process.exit(code || 1);
}, opts.timeout * 1000);

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    const code = finish({ ok: false, error: 'killed by ' + sig });
    await cleanup();
    process.exit(code || 1);
  });
}

let code;
try {
  code = finish(await main());
} catch (e) {
  log('failed:', e);
  code = finish({ ok: false, error: String(e && e.message || e) });
}
clearTimeout(overall);
await cleanup();
process.exit(code);
