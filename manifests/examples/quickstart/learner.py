"""Learner: polls the replay server for its size and serves a dashboard on SYMPH_DASHBOARD_PORT."""

import http.server
import os
import socket
import threading
import time

host, port = os.environ["SYMPH_REPLAY_SERVER_HOST"], int(os.environ["SYMPH_REPLAY_SERVER_PORT"])
latest = {"steps": 0}


class Dashboard(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"learner sees {latest['steps']} steps in the replay buffer\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


server = http.server.ThreadingHTTPServer(
    (os.environ["SYMPH_DASHBOARD_HOST"], int(os.environ["SYMPH_DASHBOARD_PORT"])), Dashboard
)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(f"learner: dashboard on http://{os.environ['SYMPH_DASHBOARD_ADDR']}/", flush=True)

while True:
    try:
        with socket.create_connection((host, port), timeout=5) as conn:
            reader = conn.makefile("r")
            while True:
                conn.sendall(b"COUNT\n")
                latest["steps"] = int(reader.readline())
                print(f"learner: replay buffer holds {latest['steps']} steps", flush=True)
                time.sleep(2)
    except (OSError, ValueError) as exc:
        print(f"learner: waiting for replay-server ({exc})", flush=True)
        time.sleep(0.5)
