#!/usr/bin/python3
"""face_landmarks.py: facemark's results in a Python application, from its element messages.

    GST_PLUGIN_PATH=target/release python3 examples/face_landmarks.py VIDEO_FILE

Decodes VIDEO_FILE, runs `facemark emit-messages=true` on it and prints one JSON line per frame:
{"pts": ns, "width": .., "height": .., "faces": [{"score": .., "box": [x, y, w, h],
"landmarks": [[x, y, z], ...]}]}, the same objects as whipcast's /events and .landmarks.jsonl.

The `faces` and `landmarks` fields are GstValueArray lists: PyGObject reads them only with
GStreamer's Python overrides, Debian package python3-gst-1.0 (besides python3-gi and
gir1.2-gst-plugins-base-1.0); without it get_value() raises "unknown type GstValueArray".
"""

import json
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


def face_of(structure):
    """A `face` structure of the message as a dict."""
    values = list(structure.get_value("landmarks"))
    return {
        "score": structure.get_value("score"),
        "box": [structure.get_value(k) for k in ("x", "y", "width", "height")],
        "landmarks": [values[i:i + 3] for i in range(0, len(values) - 2, 3)],
    }


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    Gst.init(None)
    if Gst.ElementFactory.find("facemark") is None:
        sys.exit("face_landmarks: element facemark not found (make install, or set GST_PLUGIN_PATH)")
    pipeline = Gst.parse_launch(
        "filesrc name=file ! decodebin ! videoconvert ! facemark emit-messages=true ! fakesink")
    pipeline.get_by_name("file").set_property("location", sys.argv[1])
    pipeline.set_state(Gst.State.PLAYING)
    bus = pipeline.get_bus()
    failed = None
    while True:
        message = bus.timed_pop_filtered(
            Gst.CLOCK_TIME_NONE, Gst.MessageType.ELEMENT | Gst.MessageType.EOS | Gst.MessageType.ERROR)
        if message.type == Gst.MessageType.EOS:
            break
        if message.type == Gst.MessageType.ERROR:
            error, debug = message.parse_error()
            failed = f"face_landmarks: {error.message} ({debug})"
            break
        s = message.get_structure()
        if s.get_name() != "facemark":
            continue
        try:
            faces = [face_of(f) for f in s.get_value("faces")]
        except TypeError as e:
            failed = f"face_landmarks: {e}: install python3-gst-1.0 (GStreamer's Python overrides)"
            break
        frame = {"pts": s.get_value("faces-timestamp"), "width": s.get_value("frame-width"),
                 "height": s.get_value("frame-height"), "faces": faces}
        print(json.dumps(frame, separators=(",", ":")), flush=True)
    pipeline.set_state(Gst.State.NULL)
    if failed:
        sys.exit(failed)


if __name__ == "__main__":
    main()
