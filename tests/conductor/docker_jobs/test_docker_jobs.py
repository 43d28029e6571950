"""Docker jobs on a real engine, through a real conductor and node over loopback.

The container's environment and output, host networking both ways, every stop path
leaving no container behind (graceful, stubborn, a leftover of a killed client), exit
codes and restart policy, adoption by a restarted agent, and the one-line reasons when
the CLI, the engine or the image is missing.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from symphony.node.docker import container_name, grace_seconds, run_argv

from ..conftest import Cluster, free_port, pid_alive, wait_for
from .conftest import GROUP, containers, docker, remove_containers

pytestmark = pytest.mark.timeout(120)

LOOP = "while true; do sleep 0.2; done"


def deploy(c: Cluster, image: str, name: str, script: str, *, env: dict[str, str] | None = None,
           group: str = GROUP, image_name: str | None = None, **extra: Any) -> dict[str, Any]:
    return c.deploy({"name": name, "node_group": group, "kind": "docker", "capacity_requests": {"A": 1},
                     "config": {"image": image_name or image, "command": ["sh", "-c", script], "env": env or {}},
                     **extra})


def node_of(c: Cluster) -> str:
    return str(c.docker_node)  # type: ignore[attr-defined]


def names(c: Cluster, job_id: str) -> list[str]:
    """``docker ps -a --filter name=…``: the job's containers, running or not."""
    return containers(f"name={container_name(job_id, node_of(c))}")


def container_id(c: Cluster, job_id: str) -> str:
    """The id of the job's container, "" when there is none (right now)."""
    return docker("inspect", "--format", "{{.Id}}", container_name(job_id, node_of(c)), check=False).stdout.strip()


def lines(c: Cluster, dep: str) -> list[str]:
    resp = c.http.get(f"/deployments/{dep}/logs", params={"tail": 0})
    resp.raise_for_status()
    return [entry["line"] for entry in resp.json()["lines"]]


def wait_line(c: Cluster, dep: str, text: str, *, timeout: float = 20) -> list[str]:
    return wait_for(lambda: (got := lines(c, dep)) and text in got and got, timeout=timeout,
                    what=f"{text!r} in the logs of {dep}")


def delete_and_check_gone(c: Cluster, dep: str, job_id: str) -> None:
    job = c.get(dep)["jobs"][0]
    assert c.http.delete(f"/deployments/{dep}").status_code == 200
    wait_for(lambda: not names(c, job_id), timeout=20, what=f"no container of {job_id}")
    if job["pid"]:
        wait_for(lambda: not pid_alive(job["pid"]), what="the job's supervised process to exit")
    if job["node"]:  # (a stopped job is off its node already: the conductor has nothing to tell)
        wait_for(lambda: not (c.work_dir(node_of(c)) / "jobs" / job_id).exists(), what="the job folder to go")


def test_runs_with_the_symph_environment_and_its_output_reaches_the_logs(docker_cluster: Cluster,
                                                                         docker_image: str) -> None:
    c, node = docker_cluster, node_of(docker_cluster)
    deploy(c, docker_image, "dock-env", f"env; echo ready; {LOOP}",
           env={"GREETING": "hi there; $(not expanded)"})
    job = c.wait_running("dock-env")
    got = wait_line(c, "dock-env", "ready")
    for expected in ("SYMPH_DEPLOYMENT=dock-env", "SYMPH_JOB=dock-env-0", "SYMPH_REPLICA=0", f"SYMPH_NODE={node}",
                     "SYMPH_HOST=127.0.0.1", "GREETING=hi there; $(not expanded)"):
        assert expected in got, (expected, got)
    assert not any(line.startswith("PYTHONPATH=") for line in got)  # the agent's own environment stays out
    assert job["host"] == "127.0.0.1"
    assert names(c, "dock-env-0") == [container_name("dock-env-0", node)]
    labels = docker("inspect", "--format", "{{json .Config.Labels}}", container_name("dock-env-0", node)).stdout
    assert f'"symphony.node":"{node}"' in labels and '"symphony.job":"dock-env-0"' in labels
    cmdline = Path(f"/proc/{job['pid']}/cmdline").read_bytes()
    assert b"hi there" not in cmdline  # values travel in the environment, not on the command line

    # symphony exec runs inside the container (no /etc there), with the job's environment
    resp = c.http.post("/jobs/dock-env-0/exec", json={"argv": [
        "sh", "-c", 'echo "$SYMPH_JOB"; if [ -e /etc/os-release ]; then echo host; else echo container; fi; exit 5']})
    assert resp.status_code == 200, resp.text
    assert resp.json()["output"].split() == ["dock-env-0", "container"] and resp.json()["exit_code"] == 5
    delete_and_check_gone(c, "dock-env", "dock-env-0")


def test_host_network_binds_and_connects_like_an_exec_job(docker_cluster: Cluster, docker_image: str) -> None:
    c = docker_cluster
    port = free_port()
    heard: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(30)

        def accept() -> None:
            conn, _ = listener.accept()
            with conn:
                heard.append(conn.makefile("rb").readline())

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        back = listener.getsockname()[1]
        deploy(c, docker_image, "dock-net",
               f'echo "dialled by $SYMPH_JOB" | nc "$SYMPH_HOST" {back}; '
               f'while true; do echo "pong from $SYMPH_NODE" | nc -l -p {port}; done')
        c.wait_running("dock-net")
        thread.join(30)
    assert heard == [b"dialled by dock-net-0\n"]  # the container reached a listener on the node's loopback

    def ask() -> bytes:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
                return conn.makefile("rb").readline()
        except OSError:
            return b""

    assert wait_for(ask, what="an answer from the container") == f"pong from {node_of(c)}\n".encode()
    delete_and_check_gone(c, "dock-net", "dock-net-0")


def test_a_stop_reaches_the_container_gracefully_and_a_stubborn_one_is_removed(docker_cluster: Cluster,
                                                                               docker_image: str) -> None:
    c = docker_cluster
    deploy(c, docker_image, "dock-polite", f"trap 'echo bye; exit 0' TERM; echo up; {LOOP}")
    deploy(c, docker_image, "dock-stubborn", f"trap '' TERM; echo up; {LOOP}")
    for dep in ("dock-polite", "dock-stubborn"):
        c.wait_running(dep)
        wait_line(c, dep, "up")
    for dep in ("dock-polite", "dock-stubborn"):
        assert c.http.patch(f"/deployments/{dep}", json={"desired_state": "stopped"}).status_code == 200
    for dep in ("dock-polite", "dock-stubborn"):
        c.wait_job(dep, lambda j: j["state"] == "stopped", timeout=30, what=f"{dep} stopped")
        wait_for(lambda dep=dep: not names(c, f"{dep}-0"), timeout=10, what=f"no container of {dep}")
    polite = lines(c, "dock-polite")
    assert polite.count("bye") == 1  # one SIGTERM, and what the container said after it reached the logs
    assert "bye" not in lines(c, "dock-stubborn")

    assert c.http.patch("/deployments/dock-stubborn", json={"desired_state": "running"}).status_code == 200
    c.wait_running("dock-stubborn")
    wait_for(lambda: names(c, "dock-stubborn-0") == [container_name("dock-stubborn-0", node_of(c))],
             what="a new container")
    for dep in ("dock-polite", "dock-stubborn"):
        delete_and_check_gone(c, dep, f"{dep}-0")


def test_a_leftover_container_never_blocks_a_start_restart_or_update(docker_cluster: Cluster,
                                                                     docker_image: str) -> None:
    c, node = docker_cluster, node_of(docker_cluster)
    name = container_name("dock-left-0", node)
    docker("run", "-d", "--name", name, "--label", f"symphony.node={node}", docker_image, "sleep", "300")
    leftover = container_id(c, "dock-left-0")
    deploy(c, docker_image, "dock-left", f"echo started; {LOOP}",
           restart_policy={"type": "on-failure", "backoff_seconds": 0.2})
    first = c.wait_running("dock-left")
    wait_line(c, "dock-left", "started")
    current = container_id(c, "dock-left-0")
    assert current not in ("", leftover) and names(c, "dock-left-0") == [name]

    # The docker client dies (OOM killer, kill -9) and leaves its container running: the
    # supervisor's restart must not fail on the name.
    children = Path(f"/proc/{first['pid']}/task/{first['pid']}/children").read_text().split()
    client = next(int(p) for p in children if b"run" in Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0"))
    os.kill(client, 9)
    again = c.wait_job("dock-left", lambda j: j["restarts"] >= 1 and j["state"] == "running", timeout=30,
                       what="a restart after the client died")
    assert again["exit_code"] == 137
    wait_for(lambda: names(c, "dock-left-0") == [name] and container_id(c, "dock-left-0") not in ("", current),
             timeout=20, what="the orphaned container replaced by a new one")
    wait_for(lambda: lines(c, "dock-left").count("started") == 2, what="the second run's output")

    # An update re-places the job: a new epoch, a new container, still only one.
    current = container_id(c, "dock-left-0")
    assert c.http.patch("/deployments/dock-left", json={"config": {
        "image": docker_image, "command": ["sh", "-c", f"echo updated; {LOOP}"]}}).status_code == 200
    wait_line(c, "dock-left", "updated")
    updated = c.wait_running("dock-left")
    assert updated["epoch"] > first["epoch"]
    assert names(c, "dock-left-0") == [name] and container_id(c, "dock-left-0") not in ("", current)
    delete_and_check_gone(c, "dock-left", "dock-left-0")


def test_exit_codes_and_restart_policy(docker_cluster: Cluster, docker_image: str) -> None:
    c = docker_cluster
    deploy(c, docker_image, "dock-exit", 'echo "run"; exit 3',
           restart_policy={"type": "on-failure", "backoff_seconds": 0.1, "max_restarts": 2})
    deploy(c, docker_image, "dock-once", "exit 3", restart_policy={"type": "never"})
    deploy(c, docker_image, "dock-done", "echo done", restart_policy={"type": "on-failure"})
    job = c.wait_job("dock-exit", lambda j: j["state"] == "exited", timeout=30, what="dock-exit exited")
    assert job["exit_code"] == 3 and job["restarts"] == 2
    assert wait_for(lambda: lines(c, "dock-exit").count("run") == 3 or None, what="three runs logged")
    job = c.wait_job("dock-once", lambda j: j["state"] == "exited", timeout=30, what="dock-once exited")
    assert job["exit_code"] == 3 and job["restarts"] == 0
    job = c.wait_job("dock-done", lambda j: j["state"] == "completed", timeout=30, what="dock-done completed")
    assert job["exit_code"] == 0
    for dep in ("dock-exit", "dock-once", "dock-done"):
        assert not names(c, f"{dep}-0")
        delete_and_check_gone(c, dep, f"{dep}-0")


def test_an_image_missing_on_the_node_is_one_clear_reason(docker_cluster: Cluster, docker_image: str) -> None:
    c, node = docker_cluster, node_of(docker_cluster)
    deploy(c, docker_image, "dock-noimage", "true", image_name="symphony-test/absent:never")
    job = c.wait_job("dock-noimage", lambda j: j["state"] == "failed", what="dock-noimage failed")
    assert job["reason"] == (f"docker image symphony-test/absent:never not found on node {node} "
                             "(nodes do not pull images: docker pull or docker load it there)")
    assert docker("image", "inspect", "symphony-test/absent:never", check=False).returncode != 0  # nothing pulled
    c.http.delete("/deployments/dock-noimage")


def test_a_restarted_agent_adopts_its_running_container(docker_cluster: Cluster, docker_image: str) -> None:
    c, node = docker_cluster, node_of(docker_cluster)
    deploy(c, docker_image, "dock-adopt", 'i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.2; done')
    before = c.wait_running("dock-adopt")
    wait_line(c, "dock-adopt", "tick 2")
    kept = container_id(c, "dock-adopt-0")
    assert kept
    c.nodes[node].kill9()
    assert pid_alive(before["pid"]) and container_id(c, "dock-adopt-0") == kept
    c.start_node(node)
    after = c.wait_running("dock-adopt")
    assert (after["pid"], after["epoch"], after["restarts"]) == (before["pid"], before["epoch"], 0)
    assert container_id(c, "dock-adopt-0") == kept and names(c, "dock-adopt-0") == [container_name("dock-adopt-0", node)]
    seen = len(lines(c, "dock-adopt"))
    wait_for(lambda: len(lines(c, "dock-adopt")) > seen + 2, what="output after the agent came back")
    delete_and_check_gone(c, "dock-adopt", "dock-adopt-0")


def test_no_cli_and_no_engine_are_one_clear_reason_each(docker_cluster: Cluster, docker_image: str,
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = docker_cluster
    suffix = node_of(c)[3:]
    no_cli, no_engine = f"nocli-{suffix}", f"noengine-{suffix}"
    bare = tmp_path / "bin"
    bare.mkdir()
    with monkeypatch.context() as m:  # the node processes inherit this environment
        m.setenv("PATH", str(bare))
        c.start_node(no_cli, groups=("nocli",))
    with monkeypatch.context() as m:
        m.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
        c.start_node(no_engine, groups=("noengine",))
    try:
        deploy(c, docker_image, "dock-nocli", "true", group="nocli")
        deploy(c, docker_image, "dock-noengine", "true", group="noengine")
        job = c.wait_job("dock-nocli", lambda j: j["state"] == "failed", what="dock-nocli failed")
        assert job["reason"] == f"docker jobs need the docker CLI, which is not installed on node {no_cli}"
        job = c.wait_job("dock-noengine", lambda j: j["state"] == "failed", what="dock-noengine failed")
        assert job["reason"].startswith(f"no docker engine answers on node {no_engine}: ")
        assert "\n" not in job["reason"] and "no-engine.sock" in job["reason"]
        for dep in ("dock-nocli", "dock-noengine"):
            c.http.delete(f"/deployments/{dep}")
    finally:
        for extra in (no_cli, no_engine):
            c.nodes.pop(extra).stop()
        remove_containers(f"label=symphony.node={no_cli}")


@pytest.mark.parametrize(("job_id", "node_id", "name"), [
    ("web-0", "n1", "symphony-web-0.n1"),
    ("rl.learner-0", "gpu-1", "symphony-rl.learner-0.gpu-1"),
    ("web-0", "host:7/x y", "symphony-web-0.host_7_x_y"),
])
def test_container_names_hold_job_and_node(job_id: str, node_id: str, name: str) -> None:
    assert container_name(job_id, node_id) == name


@pytest.mark.parametrize(("stop_timeout", "grace"), [(10, 9), (3, 2), (1.5, 0), (0, 0)])
def test_the_engine_kills_before_the_supervisor_does(stop_timeout: float, grace: int) -> None:
    assert grace_seconds(stop_timeout) == grace


def test_run_argv_passes_names_not_values_uses_host_network_and_never_pulls() -> None:
    argv = run_argv(docker="/usr/bin/docker", name="symphony-web-0.n1", image="img:1", command=["sh", "-c", "x"],
                    env_names=["SYMPH_JOB", "SECRET"], labels={"symphony.node": "n1"}, grace=9)
    assert argv[:2] == ["/bin/sh", "-c"]
    run = argv[argv.index("/usr/bin/docker", 5):]
    assert argv[3:7] == ["symphony-docker", "/usr/bin/docker", "symphony-web-0.n1", "9"]
    assert run[:4] == ["/usr/bin/docker", "run", "--rm", "--init"]
    assert " ".join(run).count("--network host") == 1 and " ".join(run).count("--pull never") == 1
    assert run[run.index("-e") + 1] == "SYMPH_JOB" and "SECRET" in run
    assert run[-5:] == ["--", "img:1", "sh", "-c", "x"]
