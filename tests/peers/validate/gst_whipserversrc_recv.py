#!/usr/bin/python3
"""Validation receiver: gst-plugins-rs whipserversrc (0.15) -> depay -> parse -> count (+ record).

  GST_PLUGIN_PATH=DIR /usr/bin/python3 gst_whipserversrc_recv.py --port 8190 --seconds 30 \
      [--loopback] [--record DIR] [--exit-after-delete 2]

DIR holds libgstrswebrtc.so and libgstrsrtp.so (gst-plugin-webrtc 0.15 with features
whip + rustls-ring, gst-plugin-rtp 0.15 for rtpav1depay; see Cargo.toml.txt: cargo puts
them in target/release/deps/ with a hash suffix, symlink them without it or GStreamer
cannot find the plugin entry point). Needs Debian's python3-gi (hence /usr/bin/python3)
and gir1.2-nice-0.1. WHIP endpoint: http://127.0.0.1:PORT/whip/endpoint (no CORS: put
../cors_proxy.py in front for the Chromium publisher).

--loopback adds 127.0.0.1 to libnice's local addresses (NiceAgent.add_local_address on
webrtcbin's ice-agent "agent"); once one address is added libnice uses *only* the added
ones. Without it libnice skips loopback, and in a namespace with only `lo` ICE gathering
never completes, so whipserversrc never answers the POST.

Prints one JSON line at the end with per-stream counts (RTP packets into the depayloader,
access units / temporal units out of the parser, keyframes, whether the first was a key).
"""
import argparse
import json
import os
import sys
import time

import gi
gi.require_version("Gst", "1.0")
gi.require_version("Nice", "0.1")
gi.require_version("GstRtp", "1.0")
from gi.repository import GLib, Gst, GstRtp, Nice  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, default=8190)
ap.add_argument("--seconds", type=float, default=30)
ap.add_argument("--loopback", action="store_true", help="add 127.0.0.1 to libnice's local addresses")
ap.add_argument("--record", default=None)
ap.add_argument("--exit-after-delete", type=float, default=2.0)
args = ap.parse_args()

Gst.init(None)
t0 = time.monotonic()


def log(m):
    sys.stderr.write(f"[recv {time.monotonic() - t0:7.3f}] {m}\n")


pipe = Gst.Pipeline.new("p")
src = Gst.ElementFactory.make("whipserversrc", "ws")
sig = src.get_property("signaller")
sig.set_property("host-addr", f"http://127.0.0.1:{args.port}")
src.set_property("stun-server", None)
pipe.add(src)
stats = {}
KEEP = []
ended = {"t": None}


def on_webrtcbin_ready(_sig, session, webrtcbin):
    ice = webrtcbin.get_property("ice-agent")
    agent = ice.get_property("agent")
    # keep the wrappers alive: webrtcbin 1.22's ice agent is a floating GstObject that
    # pygobject would sink and then unref (destroying webrtcbin's ICE agent)
    KEEP.extend([ice, agent])
    log(f"webrtcbin ready for session {session}: ice agent {ice} nice {agent}")
    if args.loopback:
        a = Nice.Address.new()
        a.set_from_string("127.0.0.1")
        ok = agent.add_local_address(a)
        log(f"added 127.0.0.1 to libnice local addresses: {ok}")

    def on_state(obj, _p):
        log(f"webrtcbin {_p.name} = {obj.get_property(_p.name)}")
    for p in ("ice-connection-state", "connection-state", "ice-gathering-state"):
        webrtcbin.connect(f"notify::{p}", on_state)


sig.connect("webrtcbin-ready", on_webrtcbin_ready)
sig.connect("session-ended", lambda _s, sid: (log(f"session-ended {sid}"), ended.__setitem__("t", time.monotonic()), False)[-1])

DEPAY = {
    "AV1": "rtpav1depay ! av1parse ! video/x-av1,stream-format=obu-stream,alignment=tu",
    "H264": "rtph264depay ! h264parse ! video/x-h264,stream-format=byte-stream,alignment=au",
    "VP8": "rtpvp8depay",
    "VP9": "rtpvp9depay",
    "OPUS": "rtpopusdepay",
}
EXT = {"AV1": "obu", "H264": "h264", "VP8": "vp8.ivf", "VP9": "vp9.ivf", "OPUS": "opus.ogg"}


def on_pad_added(_src, pad):
    log(f"pad-added {pad.get_name()}")
    st = stats.setdefault(pad.get_name(), {"encoding": None, "buffers": 0, "keyframes": 0, "bytes": 0,
                                           "first_is_key": None, "rtp_packets": 0, "caps": None})
    linked = {"done": False}

    exts = {}

    def bump(key, val):
        d = st.setdefault(key, {})
        d[str(val)] = d.get(str(val), 0) + 1

    def rtp_probe(_p, info):
        st["rtp_packets"] += 1
        ok, rtp = GstRtp.RTPBuffer.map(info.get_buffer(), Gst.MapFlags.READ)
        if not ok:
            return Gst.PadProbeReturn.OK
        try:
            for name, eid in exts.items():
                found, data = rtp.get_extension_onebyte_header(eid, 0)
                bump(name, bytes(data).decode(errors="replace") if found else None)
            pb = rtp.get_payload_buffer()
            pl = pb.extract_dup(0, pb.get_size()) if pb is not None and pb.get_size() else b""
            if len(pl) == 0:
                st["padding_only"] = st.get("padding_only", 0) + 1
            elif st["encoding"] == "AV1":
                h = pl[0]
                zywn = f"{h >> 7}{(h >> 6) & 1}{(h >> 4) & 3}{(h >> 3) & 1}"
                bump("av1_ZYWN", zywn)
                mm = st.setdefault("av1_payload_min_max_by_ZYWN", {}).setdefault(zywn, [len(pl), len(pl)])
                mm[0], mm[1] = min(mm[0], len(pl)), max(mm[1], len(pl))
                st["av1_max_payload"] = max(st.get("av1_max_payload", 0), len(pl))
            if rtp.get_marker():
                st["markers"] = st.get("markers", 0) + 1
        except Exception as e:  # noqa: BLE001 (never drop the buffer because of a bug here)
            log(f"rtp probe: {e}")
        finally:
            rtp.unmap()
        return Gst.PadProbeReturn.OK

    def ev_probe(p, info):
        ev = info.get_event()
        if ev.type != Gst.EventType.CAPS or linked["done"]:
            return Gst.PadProbeReturn.OK
        linked["done"] = True
        caps = ev.parse_caps()
        st["caps"] = caps.to_string()[:400]
        log(f"{p.get_name()} caps {st['caps']}")
        s = caps.get_structure(0)
        enc = (s.get_string("encoding-name") or "").upper()
        st["encoding"] = enc
        for i in range(s.n_fields()):
            f = s.nth_field_name(i)
            if f.startswith("extmap-"):
                uri = s.get_string(f) or ""
                if uri.endswith("sdes:mid"):
                    exts["mid_ext"] = int(f[7:])
                elif uri.endswith("sdes:rtp-stream-id"):
                    exts["rid_ext"] = int(f[7:])
        desc = "queue ! " + DEPAY.get(enc, "identity") + " ! identity name=count"
        if args.record and enc in ("AV1", "H264"):
            os.makedirs(args.record, exist_ok=True)
            desc += f" ! filesink location={os.path.join(args.record, p.get_name() + '.' + EXT[enc])} sync=false async=false"
        else:
            desc += " ! fakesink sync=false async=false"
        bin_ = Gst.parse_bin_from_description(desc, True)
        pipe.add(bin_)
        bin_.sync_state_with_parent()
        r = p.link(bin_.get_static_pad("sink"))
        log(f"linked {p.get_name()} to {desc}: {r}")
        cnt = bin_.get_by_name("count")

        def probe(_p, info):
            b = info.get_buffer()
            key = not b.has_flags(Gst.BufferFlags.DELTA_UNIT)
            if st["first_is_key"] is None:
                st["first_is_key"] = key
            st["buffers"] += 1
            st["keyframes"] += int(key)
            st["bytes"] += b.get_size()
            return Gst.PadProbeReturn.OK
        cnt.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, probe)
        return Gst.PadProbeReturn.OK

    pad.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, ev_probe)
    pad.add_probe(Gst.PadProbeType.BUFFER, rtp_probe)


src.connect("pad-added", on_pad_added)
loop = GLib.MainLoop()


def on_msg(_bus, m):
    if m.type == Gst.MessageType.ERROR:
        err, dbg = m.parse_error()
        log(f"ERROR {m.src.get_name()}: {err.message} {dbg}")
    elif m.type == Gst.MessageType.WARNING:
        err, dbg = m.parse_warning()
        log(f"WARNING {m.src.get_name()}: {err.message}")


bus = pipe.get_bus()
bus.add_signal_watch()
bus.connect("message", on_msg)


def tick():
    now = time.monotonic()
    if now - t0 > args.seconds or (ended["t"] and now - ended["t"] > args.exit_after_delete):
        loop.quit()
        return False
    return True


GLib.timeout_add(100, tick)
pipe.set_state(Gst.State.PLAYING)
log(f"listening on http://127.0.0.1:{args.port}/whip/endpoint")
try:
    loop.run()
finally:
    pipe.send_event(Gst.Event.new_eos())
    time.sleep(0.5)
    pipe.set_state(Gst.State.NULL)
    print(json.dumps({"streams": stats, "sessionEnded": ended["t"] is not None}), flush=True)
