"""Docker jobs on a node: the command their supervisor runs, the checks before a start,
and the removal of their containers.

A docker job runs under the same supervisor as an exec job (restart policy, exit codes,
output file, adoption by a restarted agent); what the supervisor runs is a small
``/bin/sh`` wrapper around ``docker run`` (:data:`WRAPPER`). The wrapper exists because
the supervisor's stop signals its child's process group on the host, which holds the
docker *client*, not the container: a client killed after ``stop_timeout`` would leave
the container running, and a container left behind under the job's name would make the
next ``docker run`` fail with "Conflict. The container name is already in use". So the
wrapper

* removes a leftover container of the same name before it starts one (a restart by the
  supervisor's policy after a client was killed, an agent crash, an engine hiccup);
* on the supervisor's SIGTERM, lets the client pass that one signal on to the container
  (``--sig-proxy``, the default; ``--init`` hands it to the command) and keep streaming the
  container's last words into the job's log; a container still running GRACE seconds
  later (one less than the node's ``stop_timeout``, so before the supervisor's SIGKILL of
  the client) is removed with ``docker rm -f``. (Not ``docker stop``: that sends a second
  SIGTERM, which many programs take as "quit now".)
* exits with the client's exit code, which is the container's (``--init`` makes a
  signal death 128+N, as for exec jobs).

The node agent removes the container again after every stop (:meth:`Engine.remove`), which
covers what the wrapper cannot: a supervisor that was killed, a stop that outran GRACE.

Containers run with ``--network host``: a job's ``SYMPH_HOST`` is the node's
``advertise_address`` and its ports are assigned per node, exactly as for exec jobs, so
a process must bind and connect in the node's own network namespace. On a bridge
network a bind inside the container would not be reachable at the advertised address
without publishing each port, and ``127.0.0.1`` would be the container's own loopback,
not the node's where its peers listen.

Images are never pulled (``--pull never``): a start must not hang on a registry or need
its credentials on every node, and a missing image is one clear reason
(:meth:`Engine.image_problem`) instead of a crash loop. Put images on nodes with
``docker pull`` or ``docker load`` beforehand.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

CHECK_TTL_SEC = 30.0  # how long an engine check (docker version) is trusted
CLI_TIMEOUT_SEC = 30.0
NAME_PREFIX = "symphony-"
LABEL_NODE = "symphony.node"
LABEL_JOB = "symphony.job"
LABEL_DEPLOYMENT = "symphony.deployment"

# $1 docker CLI, $2 container name, $3 grace seconds, then the `docker run` argv.
WRAPPER = r"""d=$1 name=$2 grace=$3
shift 3
"$d" rm -f "$name" >/dev/null 2>&1
stopping=
trap 'stopping=1' TERM INT HUP
"$@" &
child=$!
wait "$child"
code=$?
if [ -n "$stopping" ]; then
  ticks=$((grace * 10))
  while [ "$ticks" -gt 0 ] && read -r _ _ state _ 2>/dev/null <"/proc/$child/stat" && [ "$state" != Z ]; do
    sleep 0.1
    ticks=$((ticks - 1))
  done
  "$d" rm -f "$name" >/dev/null 2>&1
  wait "$child"
  code=$?
fi
exit "$code"
"""

_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")


def container_name(job_id: str, node_id: str) -> str:
    """``symphony-<job>.<node>``: the node is part of the name because one engine may
    serve several node agents (two agents on one host; a lost node's stale copy and its
    replacement), which must never remove each other's containers."""
    return NAME_PREFIX + _UNSAFE.sub("_", f"{job_id}.{node_id}")


def grace_seconds(stop_timeout: float) -> int:
    """``docker stop -t``: whole seconds, one less than the supervisor's stop_timeout."""
    return max(0, int(stop_timeout) - 1)


def run_argv(
    *,
    docker: str,
    name: str,
    image: str,
    command: list[str],
    env_names: Iterable[str],
    labels: dict[str, str],
    grace: int,
    pull_never: bool = True,
) -> list[str]:
    """The supervisor's command for one docker job (see the module docstring).

    Variables are passed by name only (``-e NAME``): the client takes their values from
    its own environment, which the supervisor sets to the job's. Values stay out of the
    process list and may hold any character.
    """
    run = [docker, "run", "--rm", "--init", "--network", "host", "--name", name]
    if pull_never:
        run += ["--pull", "never"]
    for key, value in labels.items():
        run += ["--label", f"{key}={value}"]
    for env_name in env_names:
        run += ["-e", env_name]
    return ["/bin/sh", "-c", WRAPPER, "symphony-docker", docker, name, str(grace), *run, "--", image, *command]


def exec_argv(docker: str, job_id: str, node_id: str, argv: list[str]) -> list[str]:
    """``symphony exec`` in a docker job: inside its container, which has the job's environment."""
    return [docker, "exec", container_name(job_id, node_id), *argv]


def _last_line(done: subprocess.CompletedProcess[str], default: str) -> str:
    lines = (done.stderr or done.stdout or "").strip().splitlines()
    return lines[-1].strip() if lines else default


@dataclass
class Engine:
    """The node's docker CLI and engine, checked before each start (cached briefly)."""

    node_id: str
    ttl: float = CHECK_TTL_SEC
    _checked: tuple[float, str | None, str | None] | None = None  # (when, problem, cli path)
    _pull_flag: dict[str, bool] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def cli(self) -> str | None:
        return shutil.which("docker")

    def problem(self) -> str | None:
        """Why docker jobs cannot start on this node now, or None."""
        now = time.monotonic()
        with self._guard:
            if self._checked is not None and now - self._checked[0] < self.ttl:
                return self._checked[1]
        docker = self.cli()
        problem: str | None
        if docker is None:
            problem = f"docker jobs need the docker CLI, which is not installed on node {self.node_id}"
        else:
            try:
                done = subprocess.run([docker, "version", "--format", "{{.Server.Version}}"],
                                      capture_output=True, text=True, timeout=CLI_TIMEOUT_SEC, check=False)
                problem = None if done.returncode == 0 and done.stdout.strip() else (
                    f"no docker engine answers on node {self.node_id}: {_last_line(done, 'docker version failed')}"
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                problem = f"no docker engine answers on node {self.node_id}: {exc}"
        with self._guard:
            self._checked = (now, problem, docker)
        return problem

    def image_problem(self, docker: str, image: str) -> str | None:
        """Why ``image`` cannot run here (it is not on the node: nodes do not pull), or None."""
        try:
            done = subprocess.run([docker, "image", "inspect", "--format", "{{.Id}}", image],
                                  capture_output=True, text=True, timeout=CLI_TIMEOUT_SEC, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"cannot inspect docker image {image} on node {self.node_id}: {exc}"
        if done.returncode == 0 and done.stdout.strip():
            return None
        if "no such image" in (done.stderr + done.stdout).lower() or not done.stderr.strip():
            return (f"docker image {image} not found on node {self.node_id} "
                    "(nodes do not pull images: docker pull or docker load it there)")
        return f"cannot inspect docker image {image} on node {self.node_id}: {_last_line(done, 'failed')}"

    def pull_never(self, docker: str) -> bool:
        """Whether this CLI has ``docker run --pull`` (20.10 and later)."""
        with self._guard:
            known = self._pull_flag.get(docker)
        if known is None:
            try:
                done = subprocess.run([docker, "run", "--help"], capture_output=True, text=True,
                                      timeout=CLI_TIMEOUT_SEC, check=False)
                known = "--pull" in done.stdout
            except (OSError, subprocess.TimeoutExpired):
                known = False
            with self._guard:
                self._pull_flag[docker] = known
        return known

    def command(self, *, job_id: str, deployment: str, image: str, command: list[str],
                env_names: Iterable[str], stop_timeout: float) -> list[str]:
        """Check the engine and the image, then build the job's command; raises
        :class:`DockerError` with the one-line reason when the job cannot start here."""
        problem = self.problem()
        if problem:
            raise DockerError(problem)
        docker = self.cli()
        if docker is None:  # uninstalled since the cached check
            raise DockerError(f"docker jobs need the docker CLI, which is not installed on node {self.node_id}")
        problem = self.image_problem(docker, image)
        if problem:
            raise DockerError(problem)
        return run_argv(
            docker=docker, name=container_name(job_id, self.node_id), image=image, command=command,
            env_names=env_names, grace=grace_seconds(stop_timeout), pull_never=self.pull_never(docker),
            labels={LABEL_NODE: self.node_id, LABEL_JOB: job_id, LABEL_DEPLOYMENT: deployment},
        )

    def remove(self, job_id: str) -> str | None:
        """Remove the job's container if one is left (best effort); returns a problem or None."""
        docker = self.cli()
        if docker is None:
            return None
        try:
            done = subprocess.run([docker, "rm", "-f", container_name(job_id, self.node_id)],
                                  capture_output=True, text=True, timeout=CLI_TIMEOUT_SEC, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
        output = (done.stderr + done.stdout).lower()
        if done.returncode != 0 and "no such container" not in output:
            return _last_line(done, "docker rm failed")
        return None


    def labelled(self, *, job_id: str | None = None) -> list[tuple[str, str]]:
        """``(container id, job id)`` of every container, running or not, labelled with this
        node (and ``job_id`` when given). Containers of other node ids (agents sharing the
        engine) and containers without Symphony's labels are never listed. Raises
        :class:`DockerError` when the engine cannot be asked; [] without a docker CLI."""
        docker = self.cli()
        if docker is None:
            return []
        argv = [docker, "ps", "-a", "--no-trunc", "--filter", f"label={LABEL_NODE}={self.node_id}"]
        if job_id is not None:
            argv += ["--filter", f"label={LABEL_JOB}={job_id}"]
        argv += ["--format", f'{{{{.ID}}}}\t{{{{.Label "{LABEL_NODE}"}}}}\t{{{{.Label "{LABEL_JOB}"}}}}']
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=CLI_TIMEOUT_SEC, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DockerError(str(exc)) from exc
        if done.returncode != 0:
            raise DockerError(_last_line(done, "docker ps failed"))
        found = []
        for line in done.stdout.splitlines():
            cid, node, job = [*line.split("\t"), "", ""][:3]
            if cid and node == self.node_id and job and (job_id is None or job == job_id):
                found.append((cid, job))
        return found

    def remove_ids(self, ids: list[str]) -> str | None:
        """``docker rm -f`` these containers; returns a problem or None (gone already is fine)."""
        docker = self.cli()
        if docker is None or not ids:
            return None
        try:
            done = subprocess.run([docker, "rm", "-f", *ids], capture_output=True, text=True,
                                  timeout=CLI_TIMEOUT_SEC, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
        output = (done.stderr + done.stdout).lower()
        if done.returncode != 0 and "no such container" not in output:
            return _last_line(done, "docker rm failed")
        return None


class DockerError(Exception):
    """A docker job cannot start on this node; the message is the reason shown to users."""
