"""A real docker engine for the docker-job tests: checked, with a test image, and cleaned.

``docker_image`` checks once per session that an engine answers (the tests skip, with
the engine's own words, only when none does) and builds the test image locally with
``docker import`` from a tar of a static ``/bin/busybox``: nothing is ever pulled.
``docker_cluster`` is a conductor with one node whose id is unique per run, so that
runs sharing the engine never touch each other's containers; every container of that
node is removed afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import Cluster

APPLETS = ("sh", "echo", "sleep", "cat", "env", "nc", "true", "false")
GROUP = "dk"


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def containers(*filters: str) -> list[str]:
    """Names of the containers (running or not) matching every ``key=value`` filter."""
    args = ["ps", "-a", "--format", "{{.Names}}"]
    for f in filters:
        args += ["--filter", f]
    return docker(*args).stdout.split()


def _engine_problem() -> str | None:
    if shutil.which("docker") is None:
        return "no docker CLI on this machine (.ci/run installs docker.io)"
    try:
        done = docker("version", "--format", "{{.Server.Version}}", timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return "docker version timed out"
    if done.returncode != 0 or not done.stdout.strip():
        lines = (done.stderr or done.stdout).strip().splitlines() or ["docker version failed"]
        return f"no docker engine answers: {lines[-1]}"
    return None


def _busybox_tar(busybox: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("bin")
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        data = busybox.read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
        info = tarfile.TarInfo("tmp")
        info.type, info.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(info)
    return buf.getvalue()


@pytest.fixture(scope="session")
def docker_image() -> str:
    problem = _engine_problem()
    if problem:
        pytest.skip(problem)
    busybox = Path("/bin/busybox")
    if not busybox.is_file():
        pytest.fail("the docker tests build their image from /bin/busybox: install busybox-static")
    tar = _busybox_tar(busybox)
    tag = f"symphony-test/busybox:{hashlib.sha256(tar).hexdigest()[:12]}"
    if docker("image", "inspect", tag, check=False).returncode != 0:
        done = subprocess.run(["docker", "import", "-", tag], input=tar, capture_output=True, timeout=120, check=False)
        if done.returncode != 0:
            pytest.fail(f"docker import of the test image failed: {done.stderr.decode(errors='replace').strip()}")
    probe = docker("run", "--rm", "--network", "none", tag, "echo", "ok", check=False)
    if probe.stdout.strip() != "ok":
        pytest.fail(f"the test image {tag} does not run (is /bin/busybox static? install busybox-static): "
                    f"{probe.stderr.strip()}")
    return tag


@pytest.fixture(scope="module")
def docker_cluster(tmp_path_factory: pytest.TempPathFactory, docker_image: str) -> Iterator[Cluster]:
    """A conductor and one node (group ``dk``, A=10) that runs docker jobs; ``.docker_node``."""
    node = f"dk-{uuid.uuid4().hex[:8]}"
    c = Cluster(tmp_path_factory.mktemp("docker"))
    c.docker_node = node  # type: ignore[attr-defined]
    try:
        c.start_conductor()
        c.start_node(node, groups=(GROUP,))
        yield c
    finally:
        c.close()
        remove_containers(f"label=symphony.node={node}")


def remove_containers(*filters: str) -> None:
    with contextlib.suppress(Exception):
        names = containers(*filters)
        if names:
            docker("rm", "-f", *names, check=False)
