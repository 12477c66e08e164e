#!/usr/bin/env python3
"""Many OBS-like WHIP publishers in one process, for the concurrency benchmark.

    .venv/bin/python bench_publish.py --url http://127.0.0.1:PORT/whip/bench{} --count N \
        --seconds S [--token T] [--media-dir DIR] [--codec AV1|H264 --clip FILE]

`{}` in the URL becomes the publisher's index (0..N-1). Each publisher is a libdatachannel
PeerConnection set up as publish.py sets one up (OBS's offer shape, no candidates in the offer,
packetizer -> RTCP SR reporter -> NACK responder, MID and RID on every packet), video only:
a pre-encoded 1280x720 AV1 clip of about 2.5 Mbit/s (media.py, "AV1-2500k", encoded once and
cached), looped; or --clip, an AV1 OBU stream or (--codec H264) an H.264 Annex B stream with
AUDs, that starts with a keyframe and is a whole number of GOPs long. No encoding happens while
publishing, so N publishers cost little CPU.

All N connect first; then publisher i starts at a keyframe i * 2 s / N after the first (so the
keyframes of the N streams are spread over the GOP, as independent OBS instances' would be) and
sends exactly S * 30 frames in real time; then all wait 500 ms and DELETE.
Prints ONE JSON line: {"ok", "count", "framesSent": [...], "bytesSent": [...], "connectMs",
"lateFrames" (sent more than 20 ms after their due time), "maxLateMs", "error"}.
"""
import argparse
import datetime
import heapq
import json
import os
import random
import string
import time
import urllib.parse

import libdatachannel as rtc

import media
from publish import (H264_FMTP, MAX_VIDEO_FRAGMENT_SIZE, MID_EXT_ID, RID_EXT_ID, VIDEO_MID, VIDEO_PT,
                     close_and_exit, http, log, obs_shape, watchdog)

LATE_S = 0.020


class Publisher:
    def __init__(self, index, url, token, codec):
        self.index, self.url, self.token = index, url, token
        self.resource = None
        config = rtc.Configuration()
        config.disable_auto_gathering = True
        # No Python callbacks: a libdatachannel thread calling into Python needs the GIL, which
        # the main thread holds while it waits on that thread in set_local_description()
        # (a deadlock seen with the 11th peer connection). States are polled instead.
        self.pc = rtc.PeerConnection(config)
        ssrc = random.randint(1, 0x7FFFFFF0)
        cname = "".join(random.choice(string.ascii_lowercase) for _ in range(16))
        v = rtc.Description.Video(VIDEO_MID, rtc.Description.Direction.SendOnly)
        if codec == "H264":
            v.add_h264_codec(VIDEO_PT, H264_FMTP)
        else:
            v.add_av1_codec(VIDEO_PT)
        v.add_ext_map(rtc.Description.Entry.ExtMap(MID_EXT_ID, "urn:ietf:params:rtp-hdrext:sdes:mid"))
        v.add_ext_map(rtc.Description.Entry.ExtMap(RID_EXT_ID, "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"))
        v.add_ssrc(ssrc, cname, cname, cname + "-video")
        self.track = self.pc.add_track(v)
        cfg = rtc.RtpPacketizationConfig(ssrc, cname, VIDEO_PT, 90000)
        cfg.mid_id, cfg.mid = MID_EXT_ID, VIDEO_MID
        cfg.rid_id, cfg.rid = RID_EXT_ID, "0"
        if codec == "H264":
            packetizer = rtc.H264RtpPacketizer(rtc.NalUnit.Separator.StartSequence, cfg, MAX_VIDEO_FRAGMENT_SIZE)
        else:
            packetizer = rtc.AV1RtpPacketizer(rtc.AV1RtpPacketizer.Packetization.TemporalUnit, cfg,
                                              MAX_VIDEO_FRAGMENT_SIZE)
        packetizer.add_to_chain(rtc.RtcpSrReporter(cfg))
        packetizer.add_to_chain(rtc.RtcpNackResponder())
        self.track.set_media_handler(packetizer)
        self.frames_sent = 0
        self.bytes_sent = 0

    def failed(self):
        return self.pc.state() in (rtc.PeerConnection.State.Failed, rtc.PeerConnection.State.Closed,
                                   rtc.PeerConnection.State.Disconnected)

    def post(self):
        self.pc.set_local_description()
        offer = obs_shape(str(self.pc.local_description()))
        status, headers, body, final_url = http("POST", self.url, self.token, offer.encode(), "application/sdp", 8.0)
        location = {k.lower(): v for k, v in headers.items()}.get("location")
        if status != 201 or not location:
            raise RuntimeError(f"publisher {self.index}: POST answered {status}: {body[:200]!r}")
        self.resource = urllib.parse.urljoin(final_url, location)
        self.pc.set_remote_description(rtc.Description(body.decode(), "answer"))
        self.pc.gather_local_candidates()

    def delete(self):
        if self.resource is None:
            return None
        status = http("DELETE", self.resource, self.token, timeout=8.0)[0]
        self.resource = None
        return status


def main():
    ap = argparse.ArgumentParser(description="N OBS-like publishers in one process")
    ap.add_argument("--url", required=True, help="endpoint URL; {} becomes the publisher index")
    ap.add_argument("--count", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--token")
    ap.add_argument("--codec", default="AV1", type=str.upper, choices=["H264", "AV1"])
    ap.add_argument("--clip", help="the pre-encoded clip to send (default: media.py's AV1-2500k)")
    ap.add_argument("--connect-timeout", type=float, default=30)
    ap.add_argument("--media-dir", default=os.environ.get("WHIPCAST_PEER_MEDIA",
                                                          os.path.join(os.path.dirname(os.path.abspath(__file__)), ".media")))
    args = ap.parse_args()
    watchdog(args.seconds + args.connect_timeout + 120)

    res = {"ok": False, "count": args.count, "framesSent": [], "bytesSent": [], "lateFrames": 0, "maxLateMs": 0.0}
    publishers = []
    try:
        split = media.h264_access_units if args.codec == "H264" else media.av1_temporal_units
        frames = split(args.clip or media.ensure("AV1-2500k", args.media_dir, log))
        keyframes = [i for i, (_, key) in enumerate(frames) if key]
        clip_bytes = sum(len(f) for f, _ in frames)
        res["clipKbps"] = round(clip_bytes * 8 / (len(frames) / media.FPS) / 1000)
        log(f"{len(frames)} frames, {len(keyframes)} keyframes, {res['clipKbps']} kbit/s")

        t_connect = time.monotonic()
        for i in range(args.count):
            p = Publisher(i, args.url.replace("{}", str(i)), args.token, args.codec)
            publishers.append(p)
            p.post()
        for p in publishers:
            while p.pc.state() != rtc.PeerConnection.State.Connected or not p.track.is_open():
                if p.failed() or time.monotonic() - t_connect > args.connect_timeout:
                    raise RuntimeError(f"publisher {p.index} not connected after {args.connect_timeout} s"
                                       f" (state {p.pc.state()})")
                time.sleep(0.005)
        res["connectMs"] = round((time.monotonic() - t_connect) * 1000)
        log(f"{args.count} publishers connected in {res['connectMs']} ms")

        # Publisher i: frames start..start+total-1 of the looped clip, frame k due at
        # t0 + offset_i + k / FPS; keyframe phases spread over one GOP.
        total = int(args.seconds * media.FPS)
        gop = media.KEYINT / media.FPS
        t0 = time.monotonic() + 0.1
        queue = []
        for p in publishers:
            p.start = keyframes[p.index % len(keyframes)]
            queue.append((t0 + p.index * gop / args.count, p.index, 0))
        heapq.heapify(queue)
        late, max_late = 0, 0.0
        while queue:
            due, index, k = heapq.heappop(queue)
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                max_late = max(max_late, -delay)
                late += int(-delay > LATE_S)
            p = publishers[index]
            if k % media.FPS == 0 and p.failed():
                raise RuntimeError(f"publisher {index}: PeerConnection {p.pc.state()} while sending")
            n = p.start + k
            data = frames[n % len(frames)][0]
            p.track.send_frame(data, rtc.FrameInfo(datetime.timedelta(seconds=n / media.FPS)))
            p.frames_sent += 1
            p.bytes_sent += len(data)
            if k + 1 < total:
                heapq.heappush(queue, (due + 1 / media.FPS, index, k + 1))
        res["lateFrames"], res["maxLateMs"] = late, round(max_late * 1000, 1)
        time.sleep(0.5)  # the last frames reach the server before the DELETE
        statuses = [p.delete() for p in publishers]
        res["framesSent"] = [p.frames_sent for p in publishers]
        res["bytesSent"] = [p.bytes_sent for p in publishers]
        if any(s != 200 for s in statuses):
            raise RuntimeError(f"DELETE answered {statuses}")
        res["ok"] = True
    except Exception as e:  # noqa: BLE001
        res["error"] = f"{type(e).__name__}: {e}"
        log("error: " + res["error"])
        for p in publishers:
            try:
                p.delete()
            except Exception as e2:  # noqa: BLE001
                log(f"DELETE after error failed: {e2}")
    finally:
        close_and_exit(res, [p.pc for p in publishers], 2)


if __name__ == "__main__":
    main()
