#!/usr/bin/env node
// Plays recorded files in headless Chromium, as a person opening them in the browser would.
//
//   node play.mjs FILE... [--chromium PATH] [--rate R]
//
// Serves each file from 127.0.0.1 (with Range support, as a media element asks), plays it in a
// <video> at R times real time (default 8) to its end, and prints ONE JSON line:
// {"ok":true,"files":[{"file","ended","error","frames","corrupted","duration"}...]}; `ok` is
// false when any file did not play to its end or reported a media error. Logs to stderr.
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const files = [];
let executable = '/usr/bin/chromium';
let rate = 8;
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--chromium') executable = args[++i];
  else if (args[i] === '--rate') rate = Number(args[++i]);
  else files.push(path.resolve(args[i]));
}
if (!files.length || !(rate > 0)) {
  console.error('usage: node play.mjs FILE... [--chromium PATH] [--rate R]');
  process.exit(2);
}
const log = (...a) => console.error('[play.mjs]', ...a);

const types = { '.webm': 'video/webm', '.mkv': 'video/x-matroska', '.mp4': 'video/mp4' };

// GET /N serves files[N]; a media element reads with Range requests.
function serve() {
  const server = http.createServer((req, res) => {
    if (req.url === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<!doctype html><video muted playsinline></video>');
      return;
    }
    const file = files[Number(req.url.slice(1))];
    if (!file) { res.writeHead(404); res.end(); return; }
    const size = fs.statSync(file).size;
    const type = types[path.extname(file)] || 'application/octet-stream';
    const range = /bytes=(\d*)-(\d*)/.exec(req.headers.range || '');
    if (range && size > 0) {
      const start = range[1] ? Number(range[1]) : 0;
      const end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
      res.writeHead(206, { 'Content-Type': type, 'Accept-Ranges': 'bytes', 'Content-Length': end - start + 1,
        'Content-Range': `bytes ${start}-${end}/${size}` });
      fs.createReadStream(file, { start, end }).pipe(res);
    } else {
      res.writeHead(200, { 'Content-Type': type, 'Accept-Ranges': 'bytes', 'Content-Length': size });
      fs.createReadStream(file).pipe(res);
    }
  });
  return new Promise(resolve => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function main() {
  const server = await serve();
  const base = `http://127.0.0.1:${server.address().port}`;
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'whipcast-play-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: executable, headless: true, timeout: 30000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', '--autoplay-policy=no-user-gesture-required',
      '--disable-background-timer-throttling', '--disable-renderer-backgrounding'],
  });
  const results = [];
  try {
    const page = context.pages()[0] || await context.newPage();
    page.on('console', m => log(`console ${m.type()}: ${m.text()}`));
    await page.goto(base + '/');
    for (let i = 0; i < files.length; i++) {
      const result = await page.evaluate(async ({ src, rate }) => {
        const video = document.querySelector('video');
        video.removeAttribute('src');
        video.load();
        return await new Promise(resolve => {
          const done = ended => {
            const q = video.getVideoPlaybackQuality();
            resolve({ ended, error: video.error ? `${video.error.code} ${video.error.message}` : null,
              frames: q.totalVideoFrames, corrupted: q.corruptedVideoFrames, duration: video.duration });
          };
          video.onended = () => done(true);
          video.onerror = () => done(false);
          video.onloadedmetadata = () => { video.playbackRate = rate; video.play().catch(() => done(false)); };
          // Real time / rate, plus slack for a slow machine.
          setTimeout(() => done(false), 60000);
          video.src = src;
        });
      }, { src: `${base}/${i}`, rate });
      results.push({ file: files[i], ...result });
      log(JSON.stringify(results[results.length - 1]));
    }
  } finally {
    await context.close().catch(() => {});
    server.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  const ok = results.every(r => r.ended && !r.error);
  process.stdout.write(JSON.stringify({ ok, files: results }) + '\n');
  return ok ? 0 : 1;
}

main().then(code => process.exit(code), e => {
  process.stdout.write(JSON.stringify({ ok: false, error: String(e && e.stack || e) }) + '\n');
  process.exit(1);
});
