"""Replay server: stores experience lines sent by agents; answers COUNT with how many."""

import os
import socketserver
import threading

HOST = os.environ["SYMPH_REPLAY_SERVER_HOST"]
PORT = int(os.environ["SYMPH_REPLAY_SERVER_PORT"])
stored: dict[str, int] = {}
lock = threading.Lock()


class Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for raw in self.rfile:
            line = raw.decode().strip()
            if line == "COUNT":
                with lock:
                    total = sum(stored.values())
                self.wfile.write(f"{total}\n".encode())
                continue
            agent, _, _step = line.partition(" ")
            with lock:
                stored[agent] = stored.get(agent, 0) + 1
                count = stored[agent]
            if count % 10 == 1:
                print(f"replay: stored {count} steps from {agent}", flush=True)
            self.wfile.write(b"ok\n")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


print(f"replay: listening on {HOST}:{PORT}", flush=True)
Server((HOST, PORT), Handler).serve_forever()
