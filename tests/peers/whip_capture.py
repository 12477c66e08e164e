#!/usr/bin/env python3
"""A fake WHIP endpoint that only records what publishers send (no media).

    python3 whip_capture.py --port 8189 [--dir /tmp/whip-capture] [--answer answer.sdp] [--token T]

For each request it logs method, path, headers and body to stderr and writes
`NNN-METHOD.txt` into --dir. POST answers 201 (after a 307 to /redirected/... with --redirect) with `Location: /whip/resource/<n>`
and a canned SDP answer (from --answer, or a built-in one that echoes the offer's
mids with recvonly: ICE/DTLS will not complete against it), OPTIONS answers the
CORS preflight, DELETE answers 200. Used to check the *shape* of the offers the
peers POST (headers, SDP) without a real server. Python 3 stdlib only.
"""
import argparse
import http.server
import itertools
import os
import re
import sys

counter = itertools.count(1)


def canned_answer(offer: str) -> str:
    lines = [l for l in offer.replace("\r\n", "\n").split("\n") if l]
    out = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0"]
    mids = [l[6:] for l in lines if l.startswith("a=mid:")]
    if mids:
        out.append("a=group:BUNDLE " + " ".join(mids))
    section = None
    for l in lines:
        if l.startswith("m="):
            parts = l.split()
            section = {"m": parts, "pts": parts[3:]}
            out.append(" ".join(parts[:1] + ["9"] + parts[2:4]))  # keep first PT only
            out += ["c=IN IP4 127.0.0.1", "a=rtcp-mux", "a=recvonly", "a=setup:active",
                    "a=ice-ufrag:fake", "a=ice-pwd:fakefakefakefakefakefake",
                    "a=fingerprint:sha-256 " + ":".join(["00"] * 32)]
        elif section is not None and l.startswith("a=mid:"):
            out.append(l)
        elif section is not None and re.match(r"a=(rtpmap|fmtp):%s " % re.escape(section["pts"][0]), l):
            out.append(l)
    out.append("a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host")
    return "\r\n".join(out) + "\r\n"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _cors(self):
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "POST, DELETE, PATCH, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
        self.send_header("Access-Control-Expose-Headers", "Location, ETag, Link")

    def _record(self, body: bytes):
        n = next(counter)
        text = f"{self.command} {self.path}\n{self.headers}\n{body.decode(errors='replace')}"
        sys.stderr.write(f"--- request {n} ---\n{text}\n")
        if self.server.dir:
            with open(os.path.join(self.server.dir, f"{n:03d}-{self.command}.txt"), "w") as f:
                f.write(text)
        return n

    def _body(self) -> bytes:
        ln = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(ln) if ln else b""

    def _auth_ok(self) -> bool:
        if self.server.token and self.headers.get("Authorization") != f"Bearer {self.server.token}":
            self.send_response(401)
            self.send_header("WWW-Authenticate", "Bearer")
            self._cors()
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        return True

    def do_OPTIONS(self):
        self._record(b"")
        self.send_response(204)
        self._cors()
        self.send_header("Accept-Post", "application/sdp")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        body = self._body()
        n = self._record(body)
        if self.server.redirect and not self.path.startswith("/redirected"):
            self.send_response(307)
            self._cors()
            self.send_header("Location", "/redirected" + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if not self._auth_ok():
            return
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/sdp":
            self.send_response(415)
            self._cors()
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        ans = (self.server.answer or canned_answer(body.decode(errors="replace"))).encode()
        self.send_response(201)
        self._cors()
        self.send_header("Content-Type", "application/sdp")
        self.send_header("Location", f"/whip/resource/{n}")
        self.send_header("ETag", f'"{n}"')
        self.send_header("Content-Length", str(len(ans)))
        self.end_headers()
        self.wfile.write(ans)

    def do_DELETE(self):
        self._record(self._body())
        if not self._auth_ok():
            return
        self.send_response(200)
        self._cors()
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_PATCH(self):
        self._record(self._body())
        self.send_response(204)
        self._cors()
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, fmt, *args):
        sys.stderr.write("[whip_capture] " + fmt % args + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8189)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--answer", default=None, help="file with a canned SDP answer")
    ap.add_argument("--token", default=None)
    ap.add_argument("--redirect", action="store_true", help="answer POST with 307 to /redirected<path> first")
    a = ap.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.dir = a.dir
    if a.dir:
        os.makedirs(a.dir, exist_ok=True)
    srv.answer = open(a.answer).read() if a.answer else None
    srv.token = a.token
    srv.redirect = a.redirect
    sys.stderr.write(f"[whip_capture] listening on http://127.0.0.1:{srv.server_address[1]}/whip/\n")
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
