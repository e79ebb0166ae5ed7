#!/usr/bin/env python3
"""A stand-in for the Docker Engine API on a unix socket, for the container
names tests: GET /containers/json answers the containers of a JSON file
(read at each request), as Docker does ([{"Id": ..., "Names": ["/name"]}]).

    docker_standin.py --socket PATH --containers FILE [--mode MODE] [--log FILE]

Modes (what the stand-in does with a request):
    ok          answers the containers (HTTP/1.1, JSON)
    hang        listens and never accepts: connections wait forever
    silent      accepts and reads the request, never answers
    garbage     answers bytes that are not HTTP and closes
    bad-json    answers HTTP 200 with a body that is not JSON
    deep-json   answers HTTP 200 with JSON nested 100000 levels deep
    huge        answers HTTP 200 with a 64 MiB body
    status500   answers HTTP 500

Prints "READY" on stdout once it listens; exits when its stdin closes (the
test that started it died or finished). With --log, appends each request's
method and path, one per line.
"""

import argparse
import os
import socket
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--containers", required=True)
    ap.add_argument("--mode", default="ok")
    ap.add_argument("--log", default="")
    args = ap.parse_args()

    if os.path.exists(args.socket):
        os.unlink(args.socket)

    def log_request(line):
        if args.log:
            with open(args.log, "a") as f:
                f.write(line + "\n")

    if args.mode == "hang":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(args.socket)
        sock.listen(64)
        ready_and_wait(args.socket)
        return

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def address_string(self):
            return "unix"

        def log_message(self, *a):
            pass

        def send_body(self, status, body, ctype="application/json"):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            log_request("GET " + self.path)
            mode = args.mode
            if mode == "silent":
                threading.Event().wait()
            if mode == "garbage":
                self.wfile.write(b"\x00\xff\xfe garbage \x01\x02\r\n\r\n\x00")
                self.close_connection = True
                return
            if mode == "bad-json":
                return self.send_body(200, b'[{"Id": "abc", "Names": [')
            if mode == "deep-json":
                return self.send_body(200, b"[" * 100000 + b"]" * 100000)
            if mode == "huge":
                return self.send_body(200, b" " * (64 << 20))
            if mode == "status500":
                return self.send_body(500, b'{"message": "boom"}')
            if not self.path.startswith("/containers/json"):
                return self.send_body(404, b'{"message": "page not found"}')
            # Read at each request: a test may change the containers.
            with open(args.containers, "rb") as f:
                self.send_body(200, f.read())

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass  # a client that hangs up on a huge or slow reply

    server = Server(args.socket, Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ready_and_wait(args.socket)


def ready_and_wait(path):
    print("READY", flush=True)
    try:
        sys.stdin.read()
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
        os._exit(0)


if __name__ == "__main__":
    main()
