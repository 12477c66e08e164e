#!/usr/bin/env python3
"""An OBS-like WHIP publisher built on libdatachannel (PyPI libdatachannel-py).

    .venv/bin/python publish.py --url http://127.0.0.1:PORT/whip/STREAM --codec AV1|H264 \
        --seconds N [--token T] [--audio] [--timeout S] [--media-dir DIR] [--start-at-keyframe] \
        [--first-key-after S] \
        [--layers N [--size WxH] [--kbps K] [--layer-order 2,1,0] [--layer-from I=S] [--layer-until I=S]]

Mirrors OBS Studio's obs-webrtc WHIP output (whip-output.cpp, OBS 30.2+):
  * libdatachannel PeerConnection with automatic ICE gathering disabled;
  * audio track mid "0" (Opus PT 111, libdatachannel's default fmtp = OBS's), video
    track mid "1" PT 96 (H264 profile-level-id=42e01f;packetization-mode=1, or AV1
    without fmtp), SSRCs base / base+1, one cname and msid for both;
  * packetizer -> RtcpSrReporter -> RtcpNackResponder on each track, MID "1" and
    RID "0" header extensions on every video packet, no RTX, PLI/FIR ignored;
  * POST the offer with *no candidates* (8 s timeout), expect exactly 201 + Location,
    apply the answer, only then gather local candidates (never PATCH);
  * frames "encoded" before the connection is up are dropped, so the stream
    usually starts mid-GOP like OBS's (use --start-at-keyframe to avoid that);
  * DELETE the resource (with the token) at the end; SIGINT ends the sending early, as OBS's
    Stop Streaming does (then DELETE and the report as usual).
With --layers N (2-4), OBS 32.1+'s simulcast (INTEROP.md "OBS simulcast"): layer i of N is
(W/N*(N-i)) x (H/N*(N-i)) (even) at K - i*(K/N) kbps, rid "i", SSRC base + 1 + i; the offer
has a=rid:i send and a=simulcast:send 0;1;...; and no video a=ssrc (libdatachannel leaves it
out); one packetizer, SR reporter and NACK responder for all layers (a NACK is answered by
sequence number only), every layer starting at sequence number 0 and RTP time 0. The answer
is checked as OBS does: the first a=simulcast line must list N layers, or the publisher gives
up without DELETE. --layer-order sends each frame's layers in that order. --layer-from I=S starts
layer I S seconds into the sending, at its first key frame from then (as a browser adds an upper
layer when its bandwidth estimate grows); --layer-until I=S stops it then (as a browser drops one).
Both are repeatable; the result has each layer's frames sent ("layerFramesSent").
Prints ONE JSON line on stdout; logs to stderr; exit 0 only when ok.
"""
import argparse
import datetime
import json
import os
import random
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import libdatachannel as rtc

import media

USER_AGENT = "Mozilla/5.0 (OBS-Studio/31.0.0; Linux x86_64; en-US)"
AUDIO_MID, VIDEO_MID = "0", "1"
AUDIO_PT, VIDEO_PT = 111, 96
MID_EXT_ID, RID_EXT_ID = 1, 2
MAX_VIDEO_FRAGMENT_SIZE = 1200  # OBS's value
H264_FMTP = "profile-level-id=42e01f;packetization-mode=1"

_t0 = time.monotonic()


def log(msg):
    sys.stderr.write(f"[obs_like {time.monotonic() - _t0:7.3f}] {msg}\n")
    sys.stderr.flush()


_printed = threading.Lock()
_done = False


def emit(result):
    """Print the one JSON line (once)."""
    global _done
    with _printed:
        if _done:
            return
        _done = True
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


# Set by SIGINT: the sending stops at the next frame, and the session ends as at --seconds.
stop_streaming = threading.Event()


def watchdog(seconds):
    def fire():
        log(f"overall timeout after {seconds} s")
        emit({"ok": False, "error": f"overall timeout after {seconds} s"})
        os._exit(3)
    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()
    return t


def close_and_exit(res, pcs, wait):
    """Close the peer connections (at most `wait` s each), print the JSON line and exit."""
    for pc in pcs:
        closer = threading.Thread(target=pc.close, daemon=True)
        closer.start()
        closer.join(wait)
    emit(res)
    sys.stderr.flush()
    # libdatachannel's threads can keep the interpreter alive: leave now.
    os._exit(0 if res["ok"] else 1)


def obs_shape(sdp: str) -> str:
    """Patch libdatachannel 0.24's offer text into the shape OBS POSTs (see README):
    libdatachannel 0.24 writes `a=ice-options:ice2 trickle` (space separated, the
    RFC 8839 syntax); the OBS builds described in INTEROP.md send `ice2,trickle`.
    Everything else libdatachannel already writes as OBS does (group BUNDLE and LS,
    msid, ssrc, rtcp-mux, rtcp-fb, fmtp). Candidates are never present (gathering
    has not started). Line endings CRLF."""
    lines = sdp.replace("\r\n", "\n").split("\n")
    out = []
    for line in lines:
        if not line:
            continue
        if line.startswith("a=ice-options:"):
            line = "a=ice-options:" + ",".join(re.split(r"[ ,]+", line[len("a=ice-options:"):].strip()))
        if line.startswith("a=candidate:") or line == "a=end-of-candidates":
            continue
        out.append(line)
    return "\r\n".join(out) + "\r\n"


def simulcast_layers(count, size, kbps):
    """[(width, height, kbps)] of OBS's layers (WHIPSimulcastEncoders): none for one layer."""
    if count <= 1:
        return []
    width, height = (int(v) for v in size.lower().split("x"))
    out = []
    for i in range(count):
        w, h = width // count * (count - i), height // count * (count - i)
        out.append((w - w % 2, h - h % 2, kbps - i * (kbps // count)))
    out[0] = (width, height, kbps)
    return out


def obs_simulcast_layers_in_answer(answer: str) -> int:
    """OBS's check of the answer: the first a=simulcast line anywhere, 1 + its count of ';'
    up to the next CRLF; no such line (or no CRLF after it): 0."""
    at = answer.find("a=simulcast")
    if at < 0:
        return 0
    end = answer.find("\r\n", at)
    if end < 0:
        return 0
    return 1 + answer[at:end].count(";")


class NoRedirectKeepAuth(urllib.request.HTTPRedirectHandler):
    """Follow 307/308 keeping the method, body and Authorization (as OBS/libcurl does)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if code in (307, 308):
            return urllib.request.Request(newurl, data=req.data, headers=dict(req.header_items()),
                                          method=req.get_method())
        return None


_opener = urllib.request.build_opener(NoRedirectKeepAuth)


def http(method, url, token, body=None, content_type=None, timeout=8.0):
    headers = {"User-Agent": USER_AGENT}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if content_type:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with _opener.open(req, timeout=timeout) as r:
            return r.status, dict(r.headers.items()), r.read(), r.geturl()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()), e.read(), url


def main():
    ap = argparse.ArgumentParser(description="OBS-like WHIP publisher (libdatachannel)")
    ap.add_argument("--url", required=True)
    ap.add_argument("--codec", default="H264", type=str.upper, choices=["H264", "AV1"])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--token")
    ap.add_argument("--audio", action="store_true", help="also send Opus (OBS always does; off by default here)")
    ap.add_argument("--silent-audio", action="store_true",
                    help="with --audio: negotiate the audio track but send no audio packet")
    ap.add_argument("--timeout", type=float, help="overall timeout, default seconds+45")
    ap.add_argument("--connect-timeout", type=float, default=15)
    ap.add_argument("--media-dir", default=os.environ.get("WHIPCAST_PEER_MEDIA",
                                                          os.path.join(os.path.dirname(os.path.abspath(__file__)), ".media")))
    ap.add_argument("--pattern", default="bars", choices=sorted(media.PATTERNS),
                    help="test picture: bars (frames of several RTP packets) or ball (one packet each)")
    ap.add_argument("--start-at-keyframe", action="store_true",
                    help="start sending at a keyframe instead of mid-GOP")
    ap.add_argument("--first-key-after", type=float, metavar="S",
                    help="start mid-GOP with the first key frame S seconds after the first frame (over --start-at-keyframe)")
    ap.add_argument("--dump-offer", help="write the POSTed offer to this file")
    ap.add_argument("--layers", type=int, default=1, choices=[1, 2, 3, 4], help="simulcast layers (OBS 32.1+)")
    ap.add_argument("--size", default="1280x720", help="size of layer 0 with --layers")
    ap.add_argument("--kbps", type=int, default=2500, help="bitrate of layer 0 with --layers")
    ap.add_argument("--layer-order", help="order in which each frame's layers are sent, e.g. 2,1,0")
    ap.add_argument("--layer-from", action="append", default=[], metavar="I=S",
                    help="layer I starts S seconds in, at a key frame (repeatable)")
    ap.add_argument("--layer-until", action="append", default=[], metavar="I=S",
                    help="layer I stops S seconds in (repeatable)")
    ap.add_argument("--declare-layer-ssrcs", action="store_true",
                    help="declare each layer's SSRC in the offer, as Firefox does (not OBS)")
    ap.add_argument("--no-rid-extension", action="store_true",
                    help="offer no RID header extension (not OBS: a server then cannot tell the layers apart)")
    args = ap.parse_args()
    watchdog(args.timeout or args.seconds + 45)
    signal.signal(signal.SIGINT, lambda *_: stop_streaming.set())

    res = {"ok": False, "codec": args.codec, "framesSent": 0, "keyFramesSent": 0, "framesDropped": 0,
           "audioPacketsSent": 0, "videoBytesSent": 0, "postStatus": None, "deleteStatus": None, "location": None,
           # CLOCK_MONOTONIC in ms when each video frame was sent (tests compare it with their own clock).
           "frameTimesMs": [], "keyFrameIndexes": []}
    pc = None
    try:
        # Encoded media first (cached): the "encoder" output.
        split = media.h264_access_units if args.codec == "H264" else media.av1_temporal_units
        layers = simulcast_layers(args.layers, args.size, args.kbps)
        if layers:
            layer_frames = [split(media.ensure(args.codec, args.media_dir, log, args.pattern, layer))
                            for layer in layers]
            frames = layer_frames[0]
            res["layers"] = [{"rid": str(i), "width": w, "height": h, "kbps": k} for i, (w, h, k) in enumerate(layers)]
        else:
            frames = split(media.ensure(args.codec, args.media_dir, log, args.pattern))
            layer_frames = [frames]
        order = [int(i) for i in args.layer_order.split(",")] if args.layer_order else list(range(len(layer_frames)))

        def layer_times(values, default):
            times = [default] * len(layer_frames)
            for value in values:
                i, at = value.split("=")
                times[int(i)] = float(at)
            return times
        layer_from = layer_times(args.layer_from, 0.0)
        layer_until = layer_times(args.layer_until, float("inf"))
        # A layer started late sends from its first key frame at or after its start; the others
        # from the first frame (mid-GOP, as OBS).
        layer_on = [at == 0.0 for at in layer_from]
        res["layerFramesSent"] = [0] * len(layer_frames)
        opus = media.opus_packets(media.ensure("OPUS", args.media_dir, log)) if args.audio and not args.silent_audio else []
        log(f"{len(frames)} {args.codec} frames, {len(opus)} opus packets in the clip")

        config = rtc.Configuration()
        config.disable_auto_gathering = True
        pc = rtc.PeerConnection(config)
        connected = threading.Event()
        failed = threading.Event()

        def on_state(state):
            log(f"PeerConnection state {state}")
            if state == rtc.PeerConnection.State.Connected:
                connected.set()
            elif state in (rtc.PeerConnection.State.Failed, rtc.PeerConnection.State.Closed,
                           rtc.PeerConnection.State.Disconnected):
                failed.set()

        pc.on_state_change(on_state)
        pc.on_ice_state_change(lambda s: log(f"ICE state {s}"))
        pc.on_gathering_state_change(lambda s: log(f"gathering state {s}"))
        pc.on_local_candidate(lambda c: log(f"local candidate {c}"))

        base_ssrc = random.randint(1, 0x7FFFFFF0)
        cname = "".join(random.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(16))
        msid = "".join(random.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(16))
        pli_count = [0]

        # Audio (mid 0) first, as OBS does. OBS always has an audio track; --audio
        # decides here whether it is negotiated at all (OBS 30.2+ can be video-only).
        audio_track = None
        if args.audio:
            a = rtc.Description.Audio(AUDIO_MID, rtc.Description.Direction.SendOnly)
            a.add_opus_codec(AUDIO_PT)  # default fmtp = OBS's
            a.add_ssrc(base_ssrc, cname, msid, msid + "-audio")
            audio_track = pc.add_track(a)
            acfg = rtc.RtpPacketizationConfig(base_ssrc, cname, AUDIO_PT, 48000)
            apack = rtc.OpusRtpPacketizer(acfg)
            apack.add_to_chain(rtc.RtcpSrReporter(acfg))
            apack.add_to_chain(rtc.RtcpNackResponder())
            audio_track.set_media_handler(apack)

        v = rtc.Description.Video(VIDEO_MID, rtc.Description.Direction.SendOnly)
        if args.codec == "H264":
            v.add_h264_codec(VIDEO_PT, H264_FMTP)
        else:
            v.add_av1_codec(VIDEO_PT)
        v.add_ext_map(rtc.Description.Entry.ExtMap(MID_EXT_ID, "urn:ietf:params:rtp-hdrext:sdes:mid"))
        if not args.no_rid_extension:
            v.add_ext_map(rtc.Description.Entry.ExtMap(RID_EXT_ID, "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"))
        for i in range(len(layers)):
            v.add_rid(str(i))
        v.add_ssrc(base_ssrc + 1, cname, msid, msid + "-video")
        video_track = pc.add_track(v)
        vcfg = rtc.RtpPacketizationConfig(base_ssrc + 1, cname, VIDEO_PT, 90000)
        vcfg.mid_id, vcfg.mid = MID_EXT_ID, VIDEO_MID
        vcfg.rid_id, vcfg.rid = RID_EXT_ID, "0"
        # Per layer: (ssrc, next sequence number), swapped into the one shared config per frame.
        layer_state = [[base_ssrc + 1 + i, 0] for i in range(len(layer_frames))]
        if layers:
            vcfg.start_timestamp = vcfg.timestamp = 0
        if args.codec == "H264":
            vpack = rtc.H264RtpPacketizer(rtc.NalUnit.Separator.StartSequence, vcfg, MAX_VIDEO_FRAGMENT_SIZE)
        else:
            vpack = rtc.AV1RtpPacketizer(rtc.AV1RtpPacketizer.Packetization.TemporalUnit, vcfg,
                                         MAX_VIDEO_FRAGMENT_SIZE)
        vpack.add_to_chain(rtc.RtcpSrReporter(vcfg))
        vpack.add_to_chain(rtc.RtcpNackResponder())
        # Not in OBS: only counts PLIs (OBS ignores them; so do we).
        vpack.add_to_chain(rtc.PliHandler(lambda: pli_count.__setitem__(0, pli_count[0] + 1)))
        video_track.set_media_handler(vpack)

        # The "encoder" starts now: frames due before the connection is up are dropped.
        enc_start = time.monotonic()

        pc.set_local_description()
        offer = obs_shape(str(pc.local_description()))
        if args.declare_layer_ssrcs and layers:
            # As Firefox does: every layer's SSRC in the video section (libdatachannel writes none).
            declared = "".join(f"a=ssrc:{state[0]} cname:{cname}\r\n" for state in layer_state)
            head, video = offer.split("m=video", 1)
            offer = head + "m=video" + video + declared
        if args.dump_offer:
            with open(args.dump_offer, "w") as f:
                f.write(offer)
        log("offer:\n" + offer)

        status, headers, body, final_url = http("POST", args.url, args.token, offer.encode(), "application/sdp", 8.0)
        res["postStatus"] = status
        hl = {k.lower(): v for k, v in headers.items()}
        loc = hl.get("location")
        res["location"] = loc
        if status != 201:
            raise RuntimeError(f"POST answered {status}: {body[:300]!r}")
        if not loc:
            raise RuntimeError("201 without Location")
        if not body.strip():
            raise RuntimeError("201 with an empty body")
        resource = urllib.parse.urljoin(final_url, loc)
        res["resource"] = resource
        if "link" in hl:
            res["link"] = hl["link"]
        answer = body.decode()
        log("answer:\n" + answer)
        if layers:
            accepted = obs_simulcast_layers_in_answer(answer)
            res["layersAccepted"] = accepted
            if accepted != len(layers):
                # OBS: "WHIP server only accepted N simulcast layers"; it closes without DELETE.
                res["resource"] = None
                raise RuntimeError(f"WHIP server only accepted {accepted} simulcast layers")
        res["answerCandidates"] = len(re.findall(r"^a=candidate:", answer, re.M))
        pc.set_remote_description(rtc.Description(answer, "answer"))
        pc.gather_local_candidates()

        t_conn = time.monotonic()
        while not connected.is_set():
            if failed.is_set():
                raise RuntimeError(f"PeerConnection {pc.state()} before connecting")
            if time.monotonic() - t_conn > args.connect_timeout:
                raise RuntimeError(f"not connected after {args.connect_timeout} s (state {pc.state()}, ICE {pc.ice_state()})")
            time.sleep(0.01)
        res["connectMs"] = round((time.monotonic() - t_conn) * 1000)
        res["localAddress"], res["remoteAddress"] = pc.local_address(), pc.remote_address()
        log(f"connected in {res['connectMs']} ms: {res['localAddress']} -> {res['remoteAddress']}")
        # the tracks open with DTLS-SRTP
        while not video_track.is_open() and time.monotonic() - t_conn < args.connect_timeout:
            time.sleep(0.005)
        if not video_track.is_open():
            raise RuntimeError("video track not open")

        # Real-time send loop. Frame i of the endless "encoder" output is due at
        # enc_start + i/30; audio packet j at enc_start + j*0.02.
        send_start = time.monotonic()
        vi = int((send_start - enc_start) * media.FPS) + 1  # next frame not yet "encoded"
        res["framesDropped"] = vi
        if args.first_key_after is not None:
            # Mid-GOP, the next key frame that many seconds after the first frame sent.
            ahead = round(args.first_key_after * media.FPS)
            key = next(k for k in range(vi + ahead, vi + ahead + len(frames)) if frames[k % len(frames)][1])
            vi = key - ahead
            enc_start = send_start - vi / media.FPS
        elif args.start_at_keyframe:
            while not frames[vi % len(frames)][1]:
                vi += 1
            # re-base the "encoder" clock so that this keyframe is due now
            enc_start = send_start - vi / media.FPS
        ai = int((send_start - enc_start) / 0.02) + 1
        first = True
        end = send_start + args.seconds
        while True:
            vdue = enc_start + vi / media.FPS
            adue = enc_start + ai * 0.02 if opus else float("inf")
            due = min(vdue, adue)
            if due >= end or stop_streaming.is_set():
                break
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if failed.is_set():
                raise RuntimeError(f"PeerConnection {pc.state()} while sending")
            if vdue <= adue:
                data, key = frames[vi % len(frames)]
                if first:
                    res["firstFrameKeyframe"] = key
                    first = False
                into = time.monotonic() - send_start
                for i in order:
                    if into < layer_from[i] or into >= layer_until[i]:
                        layer_on[i] = False
                        continue
                    if not layer_on[i]:
                        if not layer_frames[i][vi % len(layer_frames[i])][1]:
                            continue
                        layer_on[i] = True
                    res["layerFramesSent"][i] += 1
                    state = layer_state[i]
                    if layers:
                        vcfg.ssrc, vcfg.rid, vcfg.sequence_number = state[0], str(i), state[1]
                    layer_data = layer_frames[i][vi % len(layer_frames[i])][0]
                    video_track.send_frame(layer_data, rtc.FrameInfo(datetime.timedelta(seconds=vi / media.FPS)))
                    state[1] = vcfg.sequence_number
                res["framesSent"] += 1
                res["frameTimesMs"].append(round(time.monotonic() * 1000, 1))
                res["videoBytesSent"] += len(data)
                if key:
                    res["keyFrameIndexes"].append(res["framesSent"] - 1)
                res["keyFramesSent"] += int(key)
                vi += 1
            else:
                audio_track.send_frame(opus[ai % len(opus)], rtc.FrameInfo(datetime.timedelta(seconds=ai * 0.02)))
                res["audioPacketsSent"] += 1
                ai += 1
        res["publishedMs"] = round((time.monotonic() - send_start) * 1000)
        res["pliReceived"] = pli_count[0]

        status, _, body, _ = http("DELETE", resource, args.token, timeout=8.0)
        res["deleteStatus"] = status
        if status != 200:
            raise RuntimeError(f"DELETE answered {status}: {body[:200]!r}")
        if res["framesSent"] == 0:
            raise RuntimeError("no frames sent")
        res["ok"] = True
    except Exception as e:  # noqa: BLE001
        res["ok"] = False
        res["error"] = f"{type(e).__name__}: {e}"
        log("error: " + res["error"])
        # do not leave the session behind on the server
        if res.get("resource") and res["deleteStatus"] is None:
            try:
                res["deleteStatus"] = http("DELETE", res["resource"], args.token, timeout=3.0)[0]
            except Exception as e2:  # noqa: BLE001
                log(f"DELETE after error failed: {e2}")
    finally:
        close_and_exit(res, [pc] if pc is not None else [], 5)


if __name__ == "__main__":
    main()
