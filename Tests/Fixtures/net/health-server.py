#!/usr/bin/env python3
"""A stand-in for the application's health endpoint, on 127.0.0.1 only.

usage: health-server.py MODE
  up      every GET answers 200 {"status":"UP"}
  down    every GET answers 503 {"status":"DOWN"}
  hang    connections are accepted, never answered
Prints the port it listens on (HEALTH_SERVER_PORT, or a free one), then serves until killed. Each request is appended
to the file named by HEALTH_SERVER_LOG, when set.
"""
import http.server
import os
import socketserver
import sys
import time

MODE = sys.argv[1] if len(sys.argv) > 1 else "up"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        log = os.environ.get("HEALTH_SERVER_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(self.path + "\n")
        if MODE == "hang":
            time.sleep(3600)
            return
        status, body = (200, b'{"status":"UP","groups":["liveness","readiness"]}') if MODE == "up" else (
            503, b'{"status":"DOWN"}')
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.spring-boot.actuator.v3+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


server = Server(("127.0.0.1", int(os.environ.get("HEALTH_SERVER_PORT") or 0)), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
