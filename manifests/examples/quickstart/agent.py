"""Agent: connects to the replay server named by SYMPH_REPLAY_SERVER_ADDR and sends steps."""

import os
import socket
import time

name = os.environ["SYMPH_PROCESS"]
host, port = os.environ["SYMPH_REPLAY_SERVER_ADDR"].rsplit(":", 1)

while True:
    try:
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            print(f"{name}: connected to replay-server at {host}:{port}", flush=True)
            reader = conn.makefile("r")
            step = 0
            while True:
                conn.sendall(f"{name} {step}\n".encode())
                reader.readline()
                if step % 10 == 0:
                    print(f"{name}: sent step {step}", flush=True)
                step += 1
                time.sleep(0.5)
    except OSError as exc:
        print(f"{name}: replay-server not reachable ({exc}); retrying", flush=True)
        time.sleep(0.5)
