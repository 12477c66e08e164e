#!/usr/bin/env node
// Watches a whipcast WHEP view in headless Chromium, as a person opening the watch page would.
//
//   node watch.mjs URL [--seconds N] [--chromium PATH]
//
// URL is the watch page with the view and the token (/watch/<stream>?view=source&token=T): the
// page starts at once. After N seconds (default 10) it prints ONE JSON line:
// {"ok":true,"framesDecoded","rate","width","height","audioSamples","state"}: `rate` is the frames
// decoded per second over the watch from 2 s after the first frame to the end. Logs to stderr.
import { launch } from './launch.mjs';

let url = null, seconds = 10, executable = '/usr/bin/chromium';
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--seconds') seconds = Number(args[++i]);
  else if (args[i] === '--chromium') executable = args[++i];
  else url = args[i];
}
if (!url || !(seconds > 2)) {
  console.error('usage: node watch.mjs URL [--seconds N] [--chromium PATH]');
  process.exit(2);
}
const log = (...a) => console.error('[watch.mjs]', ...a);
const sleep = ms => new Promise(r => setTimeout(r, ms));

async function main() {
  const { context, close } = await launch(executable, 'watch');
  try {
    const page = context.pages()[0] || await context.newPage();
    page.on('console', m => log(`console ${m.type()}: ${m.text()}`));
    page.on('pageerror', e => log(`pageerror: ${e.message}`));
    await page.goto(url, { timeout: 15000 });
    const stats = () => page.evaluate(() => window.whepWatch.stats());
    const deadline = Date.now() + seconds * 1000;
    // The window starts 2 s after the first decoded frame (a joining viewer gets a burst).
    let first = null;
    while (Date.now() < deadline && !first) {
      const s = await stats();
      if (s.video && s.video.framesDecoded > 0) first = Date.now();
      else await sleep(100);
    }
    let start = null;
    while (first && Date.now() < deadline) {
      if (!start && Date.now() - first >= 2000) start = await stats();
      await sleep(200);
    }
    const end = await stats();
    const status = await page.evaluate(() => document.getElementById('status').textContent);
    const v = end.video || {};
    // Over the page's own clock between the two samples (`at`, taken as getStats answers): on a
    // busy machine the answers reach this script late, which must not count as time without frames.
    const rate = start ? (v.framesDecoded - start.video.framesDecoded) / ((end.at - start.at) / 1000) : 0;
    console.log(JSON.stringify({ ok: v.framesDecoded > 0, framesDecoded: v.framesDecoded || 0, rate: Math.round(rate * 10) / 10,
      width: v.width || 0, height: v.height || 0, audioSamples: (end.audio || {}).samples || 0, state: end.state, status }));
    await page.evaluate(() => window.whepWatch.stop());
    await sleep(300);
  } finally {
    await close();
  }
}

main().catch(e => { console.log(JSON.stringify({ ok: false, error: String(e) })); process.exit(1); });
