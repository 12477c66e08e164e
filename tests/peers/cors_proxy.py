#!/usr/bin/env python3
"""Reverse proxy that adds CORS to a WHIP endpoint that has none.

    python3 cors_proxy.py --port 8290 --upstream http://127.0.0.1:8190

gst-plugins-rs 0.15's whipserversrc answers OPTIONS without any
Access-Control-* header, so a page on another origin (the Chromium publisher)
cannot POST to it. This proxy answers the preflight itself, forwards
POST/PATCH/DELETE (path, body, Content-Type, Authorization, If-Match) to the
upstream, and adds Access-Control-Allow-Origin and
Access-Control-Expose-Headers: Location, ETag, Link to the responses. A relative
Location stays relative, so the DELETE goes through the proxy too.
Only for validating the publishers against servers without CORS. Stdlib only.
"""
import argparse
import http.client
import http.server
import sys
import urllib.parse

FWD_REQ = ("Content-Type", "Authorization", "If-Match", "User-Agent")
FWD_RESP = ("Content-Type", "Location", "ETag", "Link", "Accept-Post", "WWW-Authenticate", "Retry-After")


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _cors(self):
        self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin") or "*")
        self.send_header("Access-Control-Allow-Methods", "POST, PATCH, DELETE, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
        self.send_header("Access-Control-Expose-Headers", "Location, ETag, Link, Accept-Post")
        self.send_header("Vary", "Origin")

    def do_OPTIONS(self):
        self.send_response(204)
        self._cors()
        self.send_header("Accept-Post", "application/sdp")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _forward(self):
        ln = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(ln) if ln else None
        up = self.server.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=30)
        hdrs = {h: self.headers[h] for h in FWD_REQ if self.headers.get(h)}
        try:
            conn.request(self.command, self.path, body=body, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
        except OSError as e:
            self.send_response(502)
            self._cors()
            msg = f"upstream error: {e}".encode()
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            return
        sys.stderr.write(f"[cors_proxy] {self.command} {self.path} -> {r.status}\n")
        self.send_response(r.status)
        self._cors()
        for h in FWD_RESP:
            for v in r.headers.get_all(h) or []:
                self.send_header(h, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_PATCH = do_DELETE = do_GET = _forward

    def log_message(self, fmt, *args):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:8190")
    a = ap.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Proxy)
    srv.upstream = urllib.parse.urlparse(a.upstream)
    sys.stderr.write(f"[cors_proxy] http://127.0.0.1:{a.port} -> {a.upstream}\n")
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
