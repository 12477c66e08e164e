"""Encoded test media for the OBS-like publisher: made once with gst-launch-1.0,
cached on disk, split into access units / temporal units / Opus packets.

Frames are 640x360 at 30 fps, a keyframe every 60 frames (2 s, OBS's
recommended interval), CLIP_SECONDS long; the publisher loops the clip
(it starts with a keyframe and its length is a whole number of GOPs).
"""
import os
import shutil
import subprocess

FPS = 30
CLIP_SECONDS = 10
KEYINT = 60
WIDTH, HEIGHT = 640, 360

# "bars": moving SMPTE bars, AV1 keyframes ~11 kB and delta frames ~5.6 kB (so every
# frame is fragmented into several RTP packets, like real OBS content at ~1.5 Mbit/s);
# "ball": tiny frames (~200 B, one RTP packet each).
PATTERNS = {
    "bars": "videotestsrc pattern=smpte horizontal-speed=4",
    "ball": "videotestsrc pattern=ball",
}
_VIDEO_SRC = ("{src} num-buffers=%d ! video/x-raw,format=I420,width=%d,height=%d,framerate=%d/1 ! "
              % (FPS * CLIP_SECONDS, WIDTH, HEIGHT, FPS))

PIPELINES = {
    "H264": _VIDEO_SRC + (
        f"x264enc tune=zerolatency speed-preset=veryfast key-int-max={KEYINT} bframes=0 aud=true "
        "option-string=scenecut=0 "
        "bitrate=1500 ! h264parse config-interval=-1 ! "
        "video/x-h264,stream-format=byte-stream,alignment=au,profile=constrained-baseline ! "
        "filesink location={out}"),
    "AV1": _VIDEO_SRC + (
        "av1enc min-quantizer=20 max-quantizer=40 cpu-used=8 usage-profile=realtime "
        f"keyframe-max-dist={KEYINT} ! av1parse ! "
        "video/x-av1,stream-format=obu-stream,alignment=tu ! filesink location={out}"),
    "OPUS": (
        f"audiotestsrc wave=sine freq=440 volume=0.3 samplesperbuffer=960 num-buffers={50 * CLIP_SECONDS} ! "
        "audio/x-raw,rate=48000,channels=2 ! opusenc frame-size=20 bitrate=96000 ! "
        "oggmux ! filesink location={out}"),
    # The concurrency benchmark's stream: 1280x720, about 2.5 Mbit/s. libaom's rate control
    # overshoots on this content in realtime mode (target-bitrate=2500 gives ~4.5 Mbit/s), so
    # a fixed quantizer sets the rate instead.
    "AV1-2500k": (
        "{src} num-buffers=%d ! video/x-raw,format=I420,width=1280,height=720,framerate=%d/1 ! "
        "av1enc min-quantizer=53 max-quantizer=53 cpu-used=8 usage-profile=realtime threads=2 "
        "keyframe-max-dist=%d ! av1parse ! video/x-av1,stream-format=obu-stream,alignment=tu ! "
        "filesink location={out}") % (FPS * CLIP_SECONDS, FPS, KEYINT),
}
FILES = {"H264": "clip-{pattern}.h264", "AV1": "clip-{pattern}.obu", "OPUS": "clip.opus.ogg",
         "AV1-2500k": "clip-{pattern}-720p-2500k.obu"}


# A simulcast layer's clip (H264 or AV1) at its own size and bitrate, LAYER_SECONDS long (one
# GOP less than the other clips: three of them are encoded per codec).
LAYER_SECONDS = 4
LAYER_PIPELINES = {
    "H264": (
        "{src} num-buffers={frames} ! video/x-raw,format=I420,width={width},height={height},framerate=%d/1 ! "
        "x264enc tune=zerolatency speed-preset=veryfast key-int-max=%d bframes=0 aud=true "
        "option-string=scenecut=0 bitrate={kbps} ! h264parse config-interval=-1 ! "
        "video/x-h264,stream-format=byte-stream,alignment=au,profile=constrained-baseline ! "
        "filesink location={out}") % (FPS, KEYINT),
    "AV1": (
        "{src} num-buffers={frames} ! video/x-raw,format=I420,width={width},height={height},framerate=%d/1 ! "
        "av1enc min-quantizer=30 max-quantizer=50 cpu-used=8 usage-profile=realtime threads=2 "
        "keyframe-max-dist=%d ! av1parse ! video/x-av1,stream-format=obu-stream,alignment=tu ! "
        "filesink location={out}") % (FPS, KEYINT),
}


def ensure(kind: str, media_dir: str, log, pattern: str = "bars", layer=None) -> str:
    """Path of the cached encoded clip for kind (H264, AV1, OPUS); encode it if missing.
    layer=(width, height, kbps): a simulcast layer's clip of that size (H264, AV1)."""
    os.makedirs(media_dir, exist_ok=True)
    if layer:
        width, height, kbps = layer
        name = f"layer-{pattern}-{width}x{height}-{kbps}k.{'h264' if kind == 'H264' else 'obu'}"
        template = LAYER_PIPELINES[kind].replace("{frames}", str(FPS * LAYER_SECONDS)).replace(
            "{width}", str(width)).replace("{height}", str(height)).replace("{kbps}", str(kbps))
    else:
        name, template = FILES[kind].format(pattern=pattern), PIPELINES[kind]
    out = os.path.join(media_dir, name)
    if os.path.exists(out) and os.path.getsize(out) > 0:
        return out
    tmp = f"{out}.{os.getpid()}.tmp"  # parallel publishers may encode at once
    pipeline = template.format(out=tmp, src=PATTERNS[pattern])
    log(f"encoding {kind} clip: gst-launch-1.0 -q {pipeline}")
    gst = shutil.which("gst-launch-1.0") or "gst-launch-1.0"
    subprocess.run([gst, "-q"] + pipeline.split(), check=True, timeout=300,
                   stdout=subprocess.DEVNULL)
    os.replace(tmp, out)
    return out


# ---------------------------------------------------------------- H.264

def _nal_units(data: bytes):
    """Split an Annex B byte stream into NAL units (without start codes)."""
    starts = []
    i, n = 0, len(data)
    while True:
        j = data.find(b"\x00\x00\x01", i)
        if j < 0:
            break
        starts.append(j + 3)
        i = j + 3
    for k, s in enumerate(starts):
        e = starts[k + 1] - 3 if k + 1 < len(starts) else n
        # trailing zero of a 4-byte start code belongs to the next start code
        while e > s and data[e - 1] == 0 and k + 1 < len(starts):
            e -= 1
        yield data[s:e]


def h264_access_units(path: str):
    """[(annexb_bytes, is_keyframe)] per access unit. Split on AUD (x264enc aud=true);
    the AUDs are dropped (OBS's encoders do not send them)."""
    data = open(path, "rb").read()
    aus, cur = [], []
    for nal in _nal_units(data):
        if not nal:
            continue
        t = nal[0] & 0x1F
        if t == 9:  # access unit delimiter
            if cur:
                aus.append(cur)
            cur = []
            continue
        cur.append(nal)
    if cur:
        aus.append(cur)
    out = []
    for au in aus:
        key = any((n[0] & 0x1F) == 5 for n in au)
        out.append((b"".join(b"\x00\x00\x00\x01" + n for n in au), key))
    return out


# ---------------------------------------------------------------- AV1

def _leb128(data: bytes, pos: int):
    value, i = 0, 0
    while True:
        b = data[pos + i]
        value |= (b & 0x7F) << (7 * i)
        i += 1
        if not b & 0x80:
            return value, i


def _obus(data: bytes):
    """Iterate (obu_type, full_obu_bytes) of a low-overhead OBU stream (size fields present)."""
    pos, n = 0, len(data)
    while pos < n:
        h = data[pos]
        typ = (h >> 3) & 0xF
        ext = (h >> 2) & 1
        has_size = (h >> 1) & 1
        hdr = 1 + ext
        if not has_size:
            raise ValueError("OBU without size field in obu-stream")
        size, ln = _leb128(data, pos + hdr)
        end = pos + hdr + ln + size
        yield typ, data[pos:end], data[pos + hdr + ln:end]
        pos = end


OBU_SEQUENCE_HEADER, OBU_TD, OBU_FRAME_HEADER, OBU_FRAME = 1, 2, 3, 6


def _is_key_frame_header(payload: bytes) -> bool:
    # reduced_still_picture_header = 0 for these streams:
    # show_existing_frame (1 bit), frame_type (2 bits), KEY_FRAME = 0
    if not payload:
        return False
    b = payload[0]
    return (b & 0x80) == 0 and ((b >> 5) & 0x3) == 0


def av1_temporal_units(path: str):
    """[(obu_bytes, is_keyframe)] per temporal unit, temporal delimiters removed, and
    the sequence header repeated in front of every keyframe (as OBS's encoders do)."""
    data = open(path, "rb").read()
    tus, cur = [], []
    seq = None
    for typ, obu, payload in _obus(data):
        if typ == OBU_TD:
            if cur:
                tus.append(cur)
            cur = []
            continue
        if typ == OBU_SEQUENCE_HEADER:
            seq = obu
        cur.append((typ, obu, payload))
    if cur:
        tus.append(cur)
    out = []
    for tu in tus:
        key = any(t in (OBU_FRAME, OBU_FRAME_HEADER) and _is_key_frame_header(p) for t, _, p in tu)
        obus = [o for _, o, _ in tu]
        if key and seq is not None and not any(t == OBU_SEQUENCE_HEADER for t, _, _ in tu):
            obus.insert(0, seq)
        out.append((b"".join(obus), key))
    return out


# ---------------------------------------------------------------- Opus in Ogg

def opus_packets(path: str):
    """Opus packets from an Ogg file (OpusHead and OpusTags skipped)."""
    data = open(path, "rb").read()
    pos, packets, partial = 0, [], b""
    while pos + 27 <= len(data):
        if data[pos:pos + 4] != b"OggS":
            raise ValueError("bad Ogg page")
        nseg = data[pos + 26]
        segs = data[pos + 27:pos + 27 + nseg]
        body = pos + 27 + nseg
        for s in segs:
            partial += data[body:body + s]
            body += s
            if s < 255:
                packets.append(partial)
                partial = b""
        pos = body
    return [p for p in packets if not p.startswith(b"OpusHead") and not p.startswith(b"OpusTags")]
