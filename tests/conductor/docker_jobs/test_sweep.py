"""Containers a node agent no longer knows are removed, and only those.

When an agent starts it removes the containers labelled with its node id whose job it
does not hold as running; a live job's container survives the agent's restart (it is
adopted), and containers of another node id sharing the engine, or without Symphony's
labels, are never touched. When a docker job's folder is removed, every container
labelled with that job goes with it, whatever its name.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from symphony.node.docker import container_name

from ..conftest import Cluster, wait_for
from .conftest import GROUP, containers, docker, remove_containers

pytestmark = pytest.mark.timeout(120)


def create(image: str, name: str, labels: dict[str, str]) -> None:
    """A container that was never started (all a leftover needs to be)."""
    args = ["create", "--name", name]
    for key, value in labels.items():
        args += ["--label", f"{key}={value}"]
    docker(*args, image, "sleep", "60")


def exists(name: str) -> bool:
    return name in containers(f"name={name}")


def test_agent_start_and_folder_removal_sweep_only_this_nodes_leftovers(cluster_factory: Any,
                                                                        docker_image: str) -> None:
    tag = uuid.uuid4().hex[:8]
    node, other = f"sw-{tag}", f"sw-other-{tag}"
    stray = container_name("ghost-0", node)
    others = container_name("ghost-0", other)
    unlabelled = container_name("ghost-1", node)
    leftover = f"sw-leftover-{tag}"
    c: Cluster = cluster_factory()
    try:
        c.start_conductor()
        c.start_node(node, groups=(GROUP,))
        c.deploy({"name": "live", "node_group": GROUP, "kind": "docker", "capacity_requests": {"A": 1},
                  "config": {"image": docker_image, "command": ["sh", "-c", "while true; do sleep 0.2; done"]}})
        pid = c.wait_running("live")["pid"]
        live = container_name("live-0", node)
        wait_for(lambda: exists(live), what="the live job's container")

        c.nodes[node].kill9()  # the agent; the job keeps running
        create(docker_image, stray, {"symphony.node": node, "symphony.job": "ghost-0", "symphony.deployment": "ghost"})
        create(docker_image, others, {"symphony.node": other, "symphony.job": "ghost-0",
                                      "symphony.deployment": "ghost"})
        create(docker_image, unlabelled, {})
        log = c.nodes[node].log
        c.start_node(node)
        wait_for(lambda: "swept leftovers: 0 job folders, 1 containers" in log.read_text(errors="replace"),
                 what="the agent's sweep")
        assert not exists(stray)
        assert exists(others) and exists(unlabelled)
        job = c.wait_running("live")  # adopted, its container untouched
        assert job["pid"] == pid and exists(live)

        resp = c.http.patch("/deployments/live", json={"desired_state": "stopped"})
        assert resp.status_code == 200, resp.text
        wait_for(lambda: not exists(live), what="the stopped job's container to go")
        create(docker_image, leftover, {"symphony.node": node, "symphony.job": "live-0", "symphony.deployment": "live"})
        assert c.http.delete("/deployments/live").status_code == 200
        wait_for(lambda: not (c.work_dir(node) / "jobs" / "live-0").exists(), what="the job folder to go")
        wait_for(lambda: not exists(leftover), what="the job's labelled leftover to go")
        assert exists(others) and exists(unlabelled)
    finally:
        c.close()
        remove_containers(f"label=symphony.node={node}")
        remove_containers(f"label=symphony.node={other}")
        remove_containers(f"name={unlabelled}")
