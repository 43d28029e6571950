"""``symphony exec`` on a node: run a command beside a job, as the job runs.

The job's supervisor spec (``<work_dir>/jobs/<job_id>/spec.json``) holds what its
process was started with: the environment (applied over the agent's own, as the
supervisor does; ``null`` unsets) and the folder. In a docker job the command runs
inside the container instead (``docker exec``), which has the job's environment. The
command gets no terminal and no input; its output (stdout and stderr together) comes
back whole when it ends, cut at :data:`OUTPUT_MAX` bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from symphony.node.docker import exec_argv
from symphony.proto import protocol_pb2 as pb

OUTPUT_MAX = 1024 * 1024
DEFAULT_TIMEOUT_SEC = 60.0


def run_beside(jobs_dir: Path, req: pb.ExecRequest) -> pb.ExecResult:
    def failed(why: str) -> pb.ExecResult:
        return pb.ExecResult(request_id=req.request_id, exit_code=-1, error=why)

    if not req.job_id or "/" in req.job_id or req.job_id.startswith("."):
        return failed(f"invalid job id {req.job_id!r}")
    if not req.argv:
        return failed("no command given")
    try:
        spec = json.loads((jobs_dir / req.job_id / "spec.json").read_text())
    except (OSError, ValueError):
        return failed(f"job {req.job_id} has not started on this node")
    env = dict(os.environ)
    for key, value in (spec.get("env") or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    argv, cwd = list(req.argv), spec.get("workdir") or None
    if _is_docker(jobs_dir / req.job_id):  # inside the container, not beside its client
        docker = shutil.which("docker")
        if docker is None:
            return failed("the docker CLI is not installed on this node")
        argv, cwd = exec_argv(docker, req.job_id, str((spec.get("meta") or {}).get("node_id", "")), argv), None
    timeout = req.timeout_sec or DEFAULT_TIMEOUT_SEC
    try:
        done = subprocess.run(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.output or b""
        return pb.ExecResult(request_id=req.request_id, exit_code=-1, output=out[-OUTPUT_MAX:],
                             error=f"timed out after {timeout:g}s")
    except OSError as exc:
        return failed(f"{req.argv[0]}: {exc.strerror or exc}")
    return pb.ExecResult(request_id=req.request_id, exit_code=done.returncode, output=done.stdout[-OUTPUT_MAX:])


def _is_docker(job_dir: Path) -> bool:
    try:
        meta = json.loads((job_dir / "job.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and (meta.get("spec") or {}).get("kind") == "docker"
