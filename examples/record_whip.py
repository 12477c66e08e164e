#!/usr/bin/python3
"""record_whip.py: a WHIP endpoint that records one publisher's AV1 video (and Opus audio, when
sent) to WebM without re-encoding, from Python with PyGObject.

It uses whipcast's plugins as GStreamer finds them: installed (`make install`) or through
GST_PLUGIN_PATH (e.g. target/release). Debian packages: python3-gi gir1.2-gst-plugins-base-1.0.

It exits when the publisher leaves (DELETE, or silent for --timeout s) or on Ctrl-C / SIGTERM,
after the muxer has finalized the file; a second Ctrl-C quits at once.
"""

import argparse
import signal
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

# How long after a session's first pad the others may still come: whipcastsrc adds a pad for
# each medium when its first packet arrives, and the muxer must have all its pads before it
# writes the file's header. Until then each branch is held (its data waits in whipcastsrc).
SETTLE_MS = 1000

# What each of whipcastsrc's pads goes through before the muxer, and the muxer pad it takes.
CHAINS = {
    "video_": (["rtpav1depay-rs", "av1obufix"], "video_%u"),
    "audio_": (["rtpopusdepay", "opusparse"], "audio_%u"),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Options left out keep whipcastsrc's defaults (gst-inspect-1.0 whipcastsrc).
    p.add_argument("--address")
    p.add_argument("--port", type=int)
    p.add_argument("--stream")
    p.add_argument("--token", help="Bearer token publishers must send")
    p.add_argument("--timeout", type=int, help="end a silent session after this many seconds")
    p.add_argument("--output", default="recording.webm")
    return p.parse_args()


def make(factory):
    element = Gst.ElementFactory.make(factory, None)
    if element is None:
        sys.exit(f"record_whip: element {factory} not found (make install, or set GST_PLUGIN_PATH)")
    return element


def hold_branch(pipeline, pad):
    """Links a new whipcastsrc pad to its depayloader and parser, and holds its data there.
    Returns what joining the muxer needs: (pad, probe id, last element, muxer pad template)."""
    name = pad.get_name()
    chain = next((c for prefix, c in CHAINS.items() if name.startswith(prefix)), None)
    if chain is None:
        raise RuntimeError(f"unexpected pad {name}")
    factories, template = chain
    elements = [make(f) for f in factories]
    for e in elements:
        pipeline.add(e)
    for a, b in zip(elements, elements[1:]):
        if not a.link(b):
            raise RuntimeError(f"cannot link {a.get_name()} to {b.get_name()}")
    for e in elements:
        e.sync_state_with_parent()
    hold = pad.add_probe(Gst.PadProbeType.BLOCK_DOWNSTREAM, lambda *_: Gst.PadProbeReturn.OK)
    if pad.link(elements[0].get_static_pad("sink")) != Gst.PadLinkReturn.OK:
        raise RuntimeError(f"cannot link {name}")
    return pad, hold, elements[-1], template


def join(branches, mux):
    """Links every held branch to the muxer, then lets their data flow: the muxer has all its
    pads before the first buffer reaches it."""
    branches["joined"] = True
    for pad, _, last, template in branches["held"]:
        if last.get_static_pad("src").link(mux.request_pad_simple(template)) != Gst.PadLinkReturn.OK:
            raise RuntimeError(f"cannot link {pad.get_name()} to the muxer")
    for pad, hold, _, _ in branches["held"]:
        pad.remove_probe(hold)
        print(f"recording {pad.get_name()}", flush=True)
    branches["held"].clear()


def main():
    args = parse_args()
    Gst.init(None)

    pipeline = Gst.Pipeline.new(None)
    src = make("whipcastsrc")
    for name in ("address", "port", "stream", "token", "timeout"):
        if getattr(args, name) is not None:
            src.set_property(name, getattr(args, name))
    src.set_property("video-codecs", "AV1")
    src.set_property("audio-codecs", "OPUS")
    Gst.util_set_object_arg(src, "on-disconnect", "eos")
    mux = make("webmmux")
    # Whole Matroska elements to the file, each written at once and fsynced: a crash leaves a
    # file that plays up to its last half second.
    whole = make("fragmentsync")
    sink = make("filesink")
    sink.set_property("location", args.output)
    for e in (src, mux, whole, sink):
        pipeline.add(e)
    mux.link(whole)
    whole.link(sink)

    state = {"started": False, "finishing": False, "status": 0}
    loop = GLib.MainLoop()

    # `streams` names the pads this session feeds and their codecs (video_0=AV1, audio_0=OPUS),
    # before any media flows.
    def on_started(_src, session_id, remote, user_agent, streams):
        names = [streams.nth_field_name(i) for i in range(streams.n_fields())]
        codecs = ", ".join(f"{name}={streams.get_value(name)}" for name in names)
        print(f'session started: id {session_id}, remote {remote}, user agent "{user_agent}", streams {codecs}',
              flush=True)
        state["started"] = True

    def on_ended(_src, session_id, _remote, _user_agent, reason):
        print(f"session ended: id {session_id}: {reason}", flush=True)

    branches = {"held": [], "joined": False}
    lock = threading.Lock()

    def on_pad_added(element, pad):
        with lock:
            if branches["joined"]:
                print(f"record_whip: {pad.get_name()} came after the recording began: not recorded", file=sys.stderr)
                return
            try:
                branches["held"].append(hold_branch(pipeline, pad))
            except RuntimeError as e:
                error = GLib.Error.new_literal(Gst.core_error_quark(), str(e), Gst.CoreError.PAD)
                element.post_message(Gst.Message.new_error(element, error, pad.get_name()))
                return
            if len(branches["held"]) == 1:
                GLib.timeout_add(SETTLE_MS, on_settled)

    def on_settled():
        with lock:
            try:
                join(branches, mux)
            except RuntimeError as e:
                print(f"record_whip: {e}", file=sys.stderr)
                state["status"] = 1
                loop.quit()
        return GLib.SOURCE_REMOVE

    def on_complete():
        print(f"record_whip: {args.output} is complete", flush=True)
        loop.quit()
        return GLib.SOURCE_REMOVE

    # The file is complete when EOS reaches the filesink. (The pipeline's own EOS message can
    # wait longer: while a session is live, whipcastsrc's internal sinks see no EOS.)
    def on_sink_event(_pad, info):
        if info.get_event().type == Gst.EventType.EOS:
            GLib.idle_add(on_complete)
        return Gst.PadProbeReturn.OK

    def on_message(_bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            print(f"record_whip: {msg.src.get_path_string()}: {err.message} ({debug})", file=sys.stderr)
            state["status"] = 1
            loop.quit()

    def on_interrupt():
        if not state["started"]:
            print("record_whip: interrupted before any publisher came; nothing recorded", flush=True)
            loop.quit()
        elif state["finishing"]:
            print("record_whip: interrupted again: the file may be incomplete", file=sys.stderr)
            state["status"] = 1
            loop.quit()
        else:
            # EOS through every branch: the muxer writes its index and the file is complete.
            print(f"record_whip: interrupted, finishing {args.output}", flush=True)
            state["finishing"] = True
            pipeline.send_event(Gst.Event.new_eos())
        return GLib.SOURCE_CONTINUE

    src.connect("session-started", on_started)
    src.connect("session-ended", on_ended)
    src.connect("pad-added", on_pad_added)
    sink.get_static_pad("sink").add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, on_sink_event)
    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    for signum in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, on_interrupt)

    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        sys.exit("record_whip: the pipeline does not start (is the port free?)")
    where = [src.get_property(name) for name in ("address", "port", "stream")]
    print("record_whip: publish to http://{}:{}/whip/{}; ".format(*where) +
          f"recording to {args.output}", flush=True)
    loop.run()
    pipeline.set_state(Gst.State.NULL)
    return state["status"]


if __name__ == "__main__":
    sys.exit(main())
