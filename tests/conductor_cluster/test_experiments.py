"""Experiments on a conductor cluster, end to end through the real CLI.

Two processes of one experiment placed on two nodes (node groups force it) talk over
``SYMPH_ECHO_ADDR``; re-applying changes nothing; an edit restarts only the edited
process and keeps its port; status, logs (-f), visit, delete and prune work.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from .conftest import Edge, block, environ, wait_for

pytestmark = pytest.mark.timeout(180)

SERVER = """
import os, socket
host, port = os.environ["SYMPH_ECHO_HOST"], int(os.environ["SYMPH_ECHO_PORT"])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port))
s.listen()
print("listening on", host, port, flush=True)
while True:
    c, peer = s.accept()
    c.sendall(b"pong " + c.recv(100) + b" from " + os.environ["SYMPH_PROCESS"].encode())
    c.close()
"""

CLIENT = """
import os, socket, time
while True:
    try:
        c = socket.create_connection(os.environ["SYMPH_ECHO_ADDR"].rsplit(":", 1), timeout=2)
        c.sendall(os.environ["MESSAGE"].encode())
        print("reply:", c.recv(100).decode(), flush=True)
        c.close()
    except OSError as e:
        print("retry:", e, flush=True)
    time.sleep(0.3)
"""


def pingpong(message: str = "ping", *, workdir: str | None = None) -> str:
    return f"""apiVersion: symphony/v1
kind: Experiment
metadata: {{name: pingpong}}
spec:
  cluster: edge
  processes:
    - name: server
      node_group: b
      capacity_requests: {{A: 1}}
      binds: [echo]
      restart_policy: {{type: on-failure, backoff_seconds: 0.5}}
      command:
        - {sys.executable}
        - -c
        - |
{block(SERVER)}
    - name: client
      node_group: a
      connects: [echo]
      env: {{MESSAGE: {message}}}
      {"workdir: " + workdir if workdir else ""}
      command:
        - {sys.executable}
        - -c
        - |
{block(CLIENT)}
"""


def test_two_nodes_talk_reapply_is_a_noop_and_an_edit_restarts_one_process(edge: Edge) -> None:
    path = edge.write("pingpong.yaml", pingpong())
    out = edge.ok("apply", "-f", path)
    assert "experiment pingpong (edge): 2 created" in out

    rows = edge.wait_running("pingpong", {"server", "client"})
    assert rows["server"]["node"] == "nb" and rows["client"]["node"] == "na"
    server_env, client_env = environ(rows["server"]["pid"]), environ(rows["client"]["pid"])
    port = server_env["SYMPH_ECHO_PORT"]
    # the binder's node advertises 127.0.0.2: that is where everyone reaches `echo`
    assert server_env["SYMPH_ECHO_HOST"] == client_env["SYMPH_ECHO_HOST"] == "127.0.0.2"
    assert client_env["SYMPH_ECHO_ADDR"] == f"127.0.0.2:{port}"
    assert client_env["SYMPH_EXPERIMENT"] == "pingpong" and client_env["SYMPH_PROCESS"] == "client"
    assert client_env["SYMPH_CLUSTER"] == "edge" and client_env["SYMPH_REPLICA"] == "0"
    assert client_env["SYMPH_PROCESS_GROUP"] == ""
    # the default workdir is the job's folder on the node
    assert os.readlink(f"/proc/{rows['client']['pid']}/cwd") == str(edge.cluster.work_dir("na") / "jobs" / "pingpong.client")

    wait_for(lambda: "reply: pong ping from server" in edge.ok("logs", "client", "pingpong"),
             what="the client to get a reply across nodes")

    status = edge.status("pingpong")
    assert {k: (r["state"].split(":")[0], r["node"], r["cluster"], r["ready"]) for k, r in status.items()} == {
        "server": ("running", "nb", "edge", 1), "client": ("running", "na", "edge", 1)}

    # re-applying the same manifests plans and changes nothing
    assert edge.run("diff", "-f", path).returncode == 0
    assert "2 unchanged" in edge.ok("apply", "-f", path)
    again = edge.processes("pingpong")
    assert {k: r["pid"] for k, r in again.items()} == {k: r["pid"] for k, r in rows.items()}

    # an edit of the client restarts the client only; the server keeps its pid and port
    edited = edge.write("pingpong.yaml", pingpong("hello"))
    assert "1 updated, 1 unchanged" in edge.ok("apply", "-f", edited)
    new = wait_for(lambda: (r := edge.processes("pingpong")) and r["client"]["pid"] not in (None, rows["client"]["pid"])
                   and r["client"]["state"] == "running" and r, what="the client restarted")
    assert new["server"]["pid"] == rows["server"]["pid"]
    assert environ(new["client"]["pid"])["SYMPH_ECHO_PORT"] == port
    wait_for(lambda: "reply: pong hello from server" in edge.ok("logs", "client", "pingpong", "--tail", "3"),
             what="the edited client's reply")

    # visit prints the binder's address
    assert edge.ok("visit", "echo", "pingpong", "-u", "--cluster", "edge").strip() == f"http://127.0.0.2:{port}"

    # exec runs beside the process on its node, with its environment and in its folder
    out = edge.ok("exec", "client", "pingpong", "--cluster", "edge", "--", "sh", "-c", "echo $SYMPH_ECHO_ADDR; pwd")
    assert out.splitlines() == [f"127.0.0.2:{port}", str(edge.cluster.work_dir("na") / "jobs" / "pingpong.client")]
    assert edge.run("exec", "server", "pingpong", "--cluster", "edge", "--", "sh", "-c", "exit 3").returncode == 3
    missing = edge.run("exec", "server", "pingpong", "--cluster", "edge", "--", "no-such-command-here")
    assert missing.returncode == 1 and "no-such-command-here" in missing.stderr and "Traceback" not in missing.stderr
    ssh = edge.run("ssh", "server", "pingpong", "--cluster", "edge")
    assert ssh.returncode == 1 and "not supported on conductor clusters" in ssh.stderr


def interruptible() -> None:
    """In the child: SIGINT as for a foreground process (a suite started in the background of a
    non-interactive shell passes SIGINT on ignored, and Python then has no KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_logs_follow_streams_new_lines(edge: Edge) -> None:
    path = edge.write("ticker.yaml", f"""apiVersion: symphony/v1
kind: Experiment
metadata: {{name: ticker}}
spec:
  cluster: edge
  processes:
    - name: tick
      command: [{sys.executable}, -u, -c, "import time\\nfor i in range(10**6):\\n  print('tick', i); time.sleep(0.2)"]
""")
    edge.ok("apply", "-f", path)
    edge.wait_running("ticker", {"tick"})
    proc = subprocess.Popen([sys.executable, "-m", "symphony.cli", "logs", "tick", "ticker", "-f", "--tail", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=edge.env, cwd=edge.root,
                            preexec_fn=interruptible)
    try:
        assert proc.stdout is not None
        seen = [proc.stdout.readline() for _ in range(6)]
        numbers = [int(line.split()[1]) for line in seen]
        assert numbers == sorted(numbers) and len(set(numbers)) == 6, seen  # in order, no repeats
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            assert proc.wait(30) == 130
        finally:
            proc.kill()
    assert "experiment ticker (edge): deleted" in edge.ok("delete", "ticker", "-f", "--cluster", "edge")


def test_prune_and_delete_remove_processes_from_their_nodes(edge: Edge) -> None:
    sleeper = f"[{sys.executable}, -c, 'import time; time.sleep(3600)']"
    one = edge.write("one.yaml", f"""apiVersion: symphony/v1
kind: Experiment
metadata: {{name: one}}
spec:
  cluster: edge
  processes:
    - {{name: p, command: {sleeper}}}
""")
    two = edge.write("two.yaml", f"""apiVersion: symphony/v1
kind: Experiment
metadata: {{name: two}}
spec:
  cluster: edge
  groups:
    - name: g
      processes:
        - {{name: q, command: {sleeper}, replicas: 2}}
""")
    edge.ok("apply", "-f", one, "-f", two)
    pids = {k: r["pid"] for k, r in edge.wait_running("two", {"g/q-0", "g/q-1"}).items()}
    one_pid = edge.wait_running("one", {"p"})["p"]["pid"]
    assert environ(pids["g/q-1"])["SYMPH_REPLICA"] == "1"
    assert environ(pids["g/q-1"])["SYMPH_PROCESS_GROUP"] == "g"

    # a process removed behind Symphony's back (through the API) comes back on the next apply
    assert edge.cluster.http.delete("/deployments/one.p").status_code == 200
    wait_for(lambda: not helpers_alive(one_pid), what="one's process to stop")
    assert edge.run("diff", "-f", one).returncode == 1
    edge.ok("apply", "-f", one)
    one_pid = edge.wait_running("one", {"p"})["p"]["pid"]

    out = edge.ok("apply", "-f", one, "--prune")
    assert "experiment two (edge): pruned" in out
    wait_for(lambda: not any(helpers_alive(p) for p in pids.values()), what="two's processes to stop")
    assert edge.processes("two") == {}
    assert helpers_alive(one_pid)

    edge.ok("delete", "one", "-f", "--cluster", "edge")
    wait_for(lambda: not helpers_alive(one_pid), what="one's process to stop")
    assert "one" not in edge.status()
    nodes = edge.cluster.api_nodes()
    wait_for(lambda: not any(edge.cluster.work_dir(n).joinpath("jobs", "one.p").exists() for n in nodes),
             what="the job folder to go")


def helpers_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


def test_status_json_has_the_contract_fields(edge: Edge) -> None:
    path = edge.write("once.yaml", f"""apiVersion: symphony/v1
kind: Experiment
metadata: {{name: once}}
spec:
  cluster: edge
  processes:
    - {{name: done, command: [{sys.executable}, -c, "print('bye')"], restart_policy: {{type: never}}}}
""")
    edge.ok("apply", "-f", path, "--wait", "--timeout", "30")
    row = edge.status("once")["done"]
    assert {"experiment", "group", "name", "state", "restarts", "ready", "cluster", "node"} <= set(row)
    assert row["state"] == "completed" and row["exit_code"] == 0 and row["cluster"] == "edge"
    assert edge.ok("logs", "done", "once").splitlines()[0] == "bye"
    edge.ok("delete", "once", "-f", "--cluster", "edge")
