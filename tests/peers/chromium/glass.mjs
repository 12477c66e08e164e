#!/usr/bin/env node
// Glass-to-glass latency through whipcast, measured in headless Chromium: one page publishes a
// canvas over WHIP whose every frame carries its own time (performance.now() in ms, 32 bits as a
// row of black and white blocks), and watches the stream's WHEP views in the same page (the same
// clock); each frame a view shows is read back (requestVideoFrameCallback) and its age noted.
//
//   node glass.mjs --server http://127.0.0.1:8080 --stream s --token T [--seconds N] [--codec H264]
//                  [--views source,annotated] [--chromium PATH]
//
// Prints ONE JSON line: {"ok":true,"views":{"source":{"frames","median_ms","p95_ms"},...}}, from
// the frames shown after the first 3 s. Logs to stderr.
import http from 'node:http';
import { launch } from './launch.mjs';

const o = { seconds: 20, codec: 'H264', views: 'source,annotated', chromium: '/usr/bin/chromium' };
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const key = args[i].replace(/^--/, '');
  o[key] = args[++i];
}
if (!o.server || !o.stream) {
  console.error('usage: node glass.mjs --server URL --stream S [--token T] [--seconds N] [--codec C] [--views a,b]');
  process.exit(2);
}
const log = (...a) => console.error('[glass.mjs]', ...a);

// The page: publisher and viewers, with the time code written and read back.
const PAGE = `<!doctype html><canvas id="c" width="640" height="360"></canvas><script>
'use strict';
const BITS = 32, BLOCK = 20, ROW_Y = 40;
const canvas = document.getElementById('c'), ctx = canvas.getContext('2d');
let x = 0;
function draw() {
  const t = Math.round(performance.now()) >>> 0;
  ctx.fillStyle = '#808080'; ctx.fillRect(0, 0, 640, 360);
  ctx.fillStyle = '#3060c0'; ctx.fillRect(x = (x + 8) % 600, 200, 40, 40);  // motion
  for (let i = 0; i < BITS; i++) {
    ctx.fillStyle = (t >>> (BITS - 1 - i)) & 1 ? '#ffffff' : '#000000';
    ctx.fillRect(i * BLOCK, ROW_Y, BLOCK, BLOCK);
  }
}
setInterval(draw, 1000 / 30);
draw();

async function gathered(pc) {
  await new Promise(resolve => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
    setTimeout(resolve, 2000);
  });
}

async function post(url, token, pc) {
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const headers = { 'Content-Type': 'application/sdp' };
  if (token) headers.Authorization = 'Bearer ' + token;
  const r = await fetch(url, { method: 'POST', headers, body: pc.localDescription.sdp });
  if (r.status !== 201) throw new Error(url + ': ' + r.status + ' ' + (await r.text()));
  await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
}

window.publish = async (url, token, codec) => {
  const pc = new RTCPeerConnection();
  const track = canvas.captureStream(30).getVideoTracks()[0];
  const tr = pc.addTransceiver(track, { direction: 'sendonly' });
  const codecs = RTCRtpSender.getCapabilities('video').codecs;
  const preferred = codecs.filter(c => c.mimeType.toUpperCase() === 'VIDEO/' + codec);
  if (preferred.length) tr.setCodecPreferences([...preferred, ...codecs.filter(c => !preferred.includes(c))]);
  await post(url, token, pc);
  window.publisher = pc;
};

// Reads the time code of a shown frame: the blocks' centres, light or dark.
function readCode(video, scratch) {
  const w = video.videoWidth, h = video.videoHeight;
  if (!w || !h) return null;
  scratch.width = w; scratch.height = h;
  const g = scratch.getContext('2d', { willReadFrequently: true });
  g.drawImage(video, 0, 0, w, h);
  const sx = w / 640, sy = h / 360;
  let t = 0;
  for (let i = 0; i < BITS; i++) {
    const p = g.getImageData(Math.round((i * BLOCK + BLOCK / 2) * sx), Math.round((ROW_Y + BLOCK / 2) * sy), 1, 1).data;
    t = t * 2 + ((p[0] + p[1] + p[2]) / 3 > 128 ? 1 : 0);
  }
  return t;
}

window.watch = async (url, token, name) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  const video = document.createElement('video');
  video.muted = true; video.autoplay = true; video.playsInline = true;
  document.body.appendChild(video);
  pc.ontrack = e => { video.srcObject = new MediaStream([e.track]); };
  await post(url, token, pc);
  const scratch = document.createElement('canvas');
  const samples = [];
  window.samples = window.samples || {};
  window.samples[name] = samples;
  const onFrame = (now) => {
    const sent = readCode(video, scratch);
    const age = (Math.round(now) >>> 0) - sent;
    // A code misread (a block blurred by the encoder) gives an age out of any range: left out.
    if (sent !== null && age >= 0 && age < 5000) samples.push({ at: now, age });
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
};
</script>`;

function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : null;
}

async function main() {
  const server = http.createServer((_, res) => { res.writeHead(200, { 'Content-Type': 'text/html' }); res.end(PAGE); });
  await new Promise(r => server.listen(0, '127.0.0.1', r));
  const { context, close } = await launch(o.chromium, 'glass');
  try {
    const page = context.pages()[0] || await context.newPage();
    page.on('console', m => log(`console ${m.type()}: ${m.text()}`));
    page.on('pageerror', e => log(`pageerror: ${e.message}`));
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.evaluate(a => window.publish(a.url, a.token, a.codec),
      { url: `${o.server}/whip/${o.stream}`, token: o.token || null, codec: o.codec.toUpperCase() });
    await new Promise(r => setTimeout(r, 2000));
    const views = o.views.split(',');
    for (const view of views) {
      const url = `${o.server}/whep/${o.stream}` + (view === 'source' ? '/source' : '');
      await page.evaluate(a => window.watch(a.url, a.token, a.name), { url, token: o.token || null, name: view });
    }
    await new Promise(r => setTimeout(r, Number(o.seconds) * 1000));
    const samples = await page.evaluate(() => window.samples);
    const result = {};
    for (const view of views) {
      const list = samples[view] || [];
      const start = list.length ? list[0].at + 3000 : 0;
      const ages = list.filter(s => s.at >= start).map(s => s.age).sort((a, b) => a - b);
      result[view] = { frames: ages.length, median_ms: percentile(ages, 0.5), p95_ms: percentile(ages, 0.95) };
    }
    const ok = views.every(v => result[v].frames > 0);
    console.log(JSON.stringify({ ok, codec: o.codec, seconds: Number(o.seconds), views: result }));
  } finally {
    await close();
    server.close();
  }
}

main().catch(e => { console.log(JSON.stringify({ ok: false, error: String(e) })); process.exit(1); });
