"""The node's jobs: each copy runs under its own supervisor process (symphony/supervisor.py).

A job copy lives in ``<work_dir>/jobs/<job_id>/``: ``job.json`` (what the conductor
asked for: deployment, epoch, spec hash, desired state), ``spec.json`` (the
supervisor's spec), ``state.json`` (written by the supervisor: the truth about the
process) and ``output.log`` (rotated by the supervisor; streamed to the conductor by
position, see :mod:`symphony.node.output`). Because the supervisor is its own process, jobs keep
running while the agent is down or disconnected; a restarted agent finds them again
by reading these folders.

Methods block (they wait for stops, fetch images): call them from worker threads.
Each job's operations hold that job's lock; different jobs proceed in parallel.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from symphony import supervisor
from symphony.node.artifacts import ArtifactError, materialise
from symphony.node.docker import DockerError, Engine
from symphony.node.output import OutputReader
from symphony.proto import protocol_pb2 as pb

log = logging.getLogger("symphony.node.jobs")

LOG_CHUNK = 256 * 1024
LOG_MAX_BYTES = 50 * 1024 * 1024
LOG_BACKUPS = 3


class JobError(Exception):
    """The job cannot start here; the message is the reason shown to the user."""


@dataclass
class Seen:
    state_mtime: int = -1
    meta_mtime: int = -1


@dataclass
class JobManager:
    work_dir: Path
    node_id: str
    advertise_address: str = "127.0.0.1"
    stop_timeout: float = 10.0
    locks: dict[str, threading.Lock] = field(default_factory=dict)
    tails: dict[str, OutputReader] = field(default_factory=dict)
    # job id -> (its output at hello time, where to resume: None = at the end), applied
    # by the next read_logs unless the job got a new output meanwhile
    resume: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    seen: dict[str, Seen] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)
    _docker: Engine | None = None

    def __post_init__(self) -> None:
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        for job_id in self.job_ids():  # adopt: new output only, until the conductor says more
            reader = self.tails[job_id] = self._reader(job_id)
            reader.seek_end()

    # ------------------------------------------------------------------ layout
    @property
    def jobs_dir(self) -> Path:
        return self.work_dir / "jobs"

    @property
    def cache_dir(self) -> Path:
        return self.work_dir / "cache"

    def dir(self, job_id: str) -> Path:
        if not job_id or "/" in job_id or job_id.startswith("."):
            raise JobError(f"invalid job id {job_id!r}")
        return self.jobs_dir / job_id

    def lock(self, job_id: str) -> threading.Lock:
        with self._guard:
            return self.locks.setdefault(job_id, threading.Lock())

    def job_ids(self) -> list[str]:
        try:
            return sorted(p.name for p in self.jobs_dir.iterdir() if (p / "job.json").exists())
        except OSError:
            return []

    def meta(self, job_id: str) -> dict[str, Any] | None:
        try:
            data = json.loads((self.dir(job_id) / "job.json").read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _write_meta(self, job_id: str, meta: dict[str, Any]) -> None:
        path = self.dir(job_id) / "job.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, path)

    def _write_state(self, job_id: str, **fields: Any) -> None:
        now = time.time()
        state = {"state": "failed", "supervisor_pid": None, "pid": None, "restarts": 0,
                 "last_exit_code": None, "started_at": None, "finished_at": now, "reason": "",
                 "updated_at": now, **fields}
        path = self.dir(job_id) / "state.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, path)

    # ------------------------------------------------------------------ status
    def status(self, job_id: str) -> pb.DeploymentStatus | None:
        meta = self.meta(job_id)
        if meta is None:
            return None
        state = supervisor.read_state(str(self.dir(job_id) / "state.json")) or {}
        name = str(state.get("state") or "starting")
        if name not in supervisor.FINAL_STATES and state.get("supervisor_pid") and not supervisor.is_alive(
            state.get("supervisor_pid")
        ):
            name, reason = "unknown", "the job's supervisor is gone (killed, or the machine restarted)"
        else:
            reason = str(state.get("reason") or "")
        st = pb.DeploymentStatus(
            job_id=job_id,
            deployment_id=str(meta.get("deployment_id", "")),
            epoch=int(meta.get("epoch", 0)),
            desired_state=str(meta.get("desired_state", "running")),
            state=name,
            pid=int(state.get("pid") or 0),
            started_at_ms=int(float(state.get("started_at") or 0) * 1000),
            stopped_at_ms=int(float(state.get("finished_at") or 0) * 1000),
            restart_count=int(state.get("restarts") or 0),
            reason=reason,
            spec_hash=str(meta.get("spec_hash", "")),
        )
        code = state.get("last_exit_code")
        if isinstance(code, int):
            st.has_exit_code, st.last_exit_code = True, code
        return st

    def all_statuses(self) -> list[pb.DeploymentStatus]:
        return [s for s in (self.status(j) for j in self.job_ids()) if s is not None]

    def changed_statuses(self) -> list[pb.DeploymentStatus]:
        """Statuses whose files changed since the last call (cheap: one stat per file)."""
        out = []
        for job_id in self.job_ids():
            d = self.dir(job_id)
            try:
                sm = (d / "state.json").stat().st_mtime_ns
            except OSError:
                sm = 0
            try:
                mm = (d / "job.json").stat().st_mtime_ns
            except OSError:
                continue
            seen = self.seen.setdefault(job_id, Seen())
            if (sm, mm) != (seen.state_mtime, seen.meta_mtime):
                seen.state_mtime, seen.meta_mtime = sm, mm
                st = self.status(job_id)
                if st is not None:
                    out.append(st)
        return out

    def used_capacity(self) -> dict[str, float]:
        used: dict[str, float] = {}
        for job_id in self.job_ids():
            meta = self.meta(job_id) or {}
            if meta.get("desired_state") != "running":
                continue
            state = supervisor.read_state(str(self.dir(job_id) / "state.json")) or {}
            if state.get("state") in supervisor.FINAL_STATES:
                continue
            for cls, value in (meta.get("capacity_requests") or {}).items():
                used[cls] = used.get(cls, 0.0) + float(value)
        return used

    # ------------------------------------------------------------------ logs
    def _reader(self, job_id: str) -> OutputReader:
        return OutputReader(self.dir(job_id) / "output.log", backups=LOG_BACKUPS,
                            max_file_bytes=LOG_MAX_BYTES, chunk=LOG_CHUNK)

    def output_ids(self) -> dict[str, str]:
        """Each job copy's output id (for the hello: resume cursors refer to these)."""
        return {job_id: _output_id(meta) for job_id in self.job_ids() if (meta := self.meta(job_id)) is not None}

    def resume_logs(self, at_hello: dict[str, str], cursors: dict[str, tuple[str, int]]) -> None:
        """Where each copy's streaming starts on this connection: from the conductor's
        cursor (from the output's start when the cursor is for another output), or, for
        copies the conductor does not want, only new output."""
        with self._guard:
            self.resume.clear()
            for job_id, output_id in at_hello.items():
                cursor = cursors.get(job_id)
                if cursor is None:
                    self.resume[job_id] = (output_id, None)
                else:
                    self.resume[job_id] = (output_id, cursor[1] if cursor[0] == output_id else 0)

    def read_logs(self) -> list[pb.DeploymentLogs]:
        """New complete lines of every job's output since the last call, with positions."""
        out = []
        for job_id in self.job_ids():
            lock = self.lock(job_id)
            if not lock.acquire(blocking=False):
                continue  # being started or stopped: next time
            try:
                logs = self._read_job_logs(job_id)
            finally:
                lock.release()
            if logs is not None:
                out.append(logs)
        return out

    def _read_job_logs(self, job_id: str) -> pb.DeploymentLogs | None:
        meta = self.meta(job_id)
        if meta is None:
            return None
        output_id = _output_id(meta)
        reader = self.tails.get(job_id)
        if reader is None:
            reader = self.tails[job_id] = self._reader(job_id)
        with self._guard:
            resume = self.resume.pop(job_id, None)
        if resume is not None and resume[0] == output_id:
            if resume[1] is None:
                reader.seek_end()
            else:
                reader.seek(resume[1])
        lines = reader.read()
        if not lines:
            return None
        now = int(time.time() * 1000)
        return pb.DeploymentLogs(
            deployment_id=str(meta.get("deployment_id", "")), job_id=job_id, epoch=int(meta.get("epoch", 0)),
            output_id=output_id,
            entries=[pb.LogEntry(timestamp_unix_ms=now, stream="output", line=text, end_offset=end)
                     for text, end in lines],
        )

    # ------------------------------------------------------------------ actions
    def start(self, req: pb.DeploymentReq) -> str:
        """Run the copy ``(job_id, epoch)``; idempotent. Returns what was done, for the ack."""
        job_id = req.job_id
        with self.lock(job_id):
            meta = self.meta(job_id)
            if meta is not None:
                epoch = int(meta.get("epoch", 0))
                if epoch > req.epoch:
                    return f"ignored: holds epoch {epoch} > {req.epoch}"
                if epoch == req.epoch and meta.get("spec_hash") == req.spec_hash and meta.get("desired_state") == "running":
                    return "already running this copy"
                self._stop_locked(job_id)
            spec = json.loads(req.specification)
            d = self.dir(job_id)
            if d.exists():
                shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
            self.tails[job_id] = self._reader(job_id)  # a new output, read from its start
            with self._guard:
                self.resume.pop(job_id, None)
            self._write_meta(job_id, {
                "job_id": job_id, "deployment_id": req.deployment_id, "epoch": req.epoch,
                "output_id": uuid.uuid4().hex,
                "replica": req.replica, "spec_hash": req.spec_hash, "desired_state": "running",
                "capacity_requests": spec.get("capacity_requests") or {}, "spec": spec,
            })
            self._write_state(job_id, state="starting", finished_at=None, reason="preparing")
            try:
                self._launch(job_id, spec, req.replica)
            except JobError as exc:
                self._write_state(job_id, state="failed", reason=str(exc))
                return f"failed: {exc}"
            return "started"

    def _launch(self, job_id: str, spec: dict[str, Any], replica: int) -> None:
        d = self.dir(job_id)
        config = spec.get("config") or {}
        command = config.get("command") or []
        if isinstance(command, str):
            command = ["/bin/sh", "-c", command]
        env = {str(k): str(v) for k, v in (config.get("env") or {}).items()}
        env.update({
            "SYMPH_DEPLOYMENT": str(spec.get("name", "")), "SYMPH_JOB": job_id, "SYMPH_REPLICA": str(replica),
            "SYMPH_NODE": self.node_id, "SYMPH_HOST": self.advertise_address,
        })
        workdir = d
        if spec.get("kind", "exec") == "docker":
            argv = self._docker_command(job_id, spec, env)
        else:
            if not command:
                raise JobError("config.command is empty")
            if config.get("image"):
                try:
                    workdir = materialise(str(config["image"]), self.cache_dir, d)
                except ArtifactError as exc:
                    raise JobError(str(exc)) from exc
            argv = list(command)
            if config.get("env_name"):
                conda = os.environ.get("CONDA_EXE") or shutil.which("conda")
                if not conda:
                    raise JobError(
                        f"config.env_name {config['env_name']!r} needs conda, which is not installed on node {self.node_id}"
                    )
                argv = [conda, "run", "--no-capture-output", "-n", str(config["env_name"]), *argv]
            if config.get("workdir"):  # an experiment's process: relative = inside the job folder
                workdir = workdir / str(config["workdir"])
                if not Path(str(config["workdir"])).is_absolute():
                    workdir.mkdir(parents=True, exist_ok=True)
        policy = spec.get("restart_policy") or {}
        sup_spec: dict[str, Any] = {
            "command": argv,
            "env": env,
            "workdir": str(workdir),
            "stdin": "null",
            "restart_policy": {
                "type": policy.get("type", "on-failure"),
                "backoff_seconds": float(policy.get("backoff_seconds", 10)),
                "max_restarts": int(policy.get("max_restarts", 0)),
            },
            "log_file": str(d / "output.log"),
            "state_file": str(d / "state.json"),
            "stop_timeout": self.stop_timeout,
            "log_max_bytes": LOG_MAX_BYTES,
            "log_backups": LOG_BACKUPS,
            "meta": {"job_id": job_id, "node_id": self.node_id},
        }
        for key in ("restart_window_seconds", "crash_loop_min_runtime", "backoff_cap_seconds"):
            if key in policy:
                sup_spec[key] = policy[key]
        try:
            supervisor.write_spec(str(d / "spec.json"), sup_spec)
        except supervisor.SpecError as exc:
            raise JobError(f"invalid job: {exc}") from exc
        supervisor.launch_detached(str(d / "spec.json"))
        self._wait_started(d / "state.json")

    def _wait_started(self, state_file: Path, timeout: float = 3.0) -> None:
        """Until the supervisor has started the process (or given up), so that the status
        sent right after a start already says ``running``; a slow start just reports later."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = supervisor.read_state(str(state_file)) or {}
            if st.get("supervisor_pid") and st.get("state") not in (None, "starting"):
                return
            time.sleep(0.002)

    def _docker_command(self, job_id: str, spec: dict[str, Any], env: dict[str, str]) -> list[str]:
        config = spec.get("config") or {}
        image = config.get("image")
        if not image:
            raise JobError("config.image: a docker job needs an image name")
        command = config.get("command") or []
        if isinstance(command, str):
            command = ["/bin/sh", "-c", command]
        try:
            return self._engine().command(job_id=job_id, deployment=str(spec.get("name", "")), image=str(image),
                                        command=[str(a) for a in command], env_names=list(env),
                                        stop_timeout=self.stop_timeout)
        except DockerError as exc:
            raise JobError(str(exc)) from exc

    def stop(self, job_id: str, epoch: int, *, remove: bool) -> str:
        """Stop the copy if it is ``epoch`` (or older); a newer copy is left alone."""
        with self.lock(job_id):
            meta = self.meta(job_id)
            if meta is None:
                return "no such job"
            held = int(meta.get("epoch", 0))
            if held > epoch:
                return f"ignored: holds epoch {held} > {epoch}"
            self._stop_locked(job_id)
            if remove:
                shutil.rmtree(self.dir(job_id), ignore_errors=True)
                self.tails.pop(job_id, None)
                self.seen.pop(job_id, None)
                with self._guard:
                    self.resume.pop(job_id, None)
                if (meta.get("spec") or {}).get("kind") == "docker":
                    self._remove_containers_locked(job_id)  # any left with the job's labels
                return "removed"
            meta["desired_state"] = "stopped"
            self._write_meta(job_id, meta)
            return "stopped"

    def _stop_locked(self, job_id: str) -> None:
        state_file = self.dir(job_id) / "state.json"
        state = supervisor.read_state(str(state_file))
        if state is not None and not supervisor.is_final(state):
            supervisor.stop(str(state_file), timeout=self.stop_timeout + 5.0)
        if ((self.meta(job_id) or {}).get("spec") or {}).get("kind") == "docker":  # whatever the stop left
            problem = self._engine().remove(job_id)
            if problem:
                log.warning("job %s: cannot remove its container: %s", job_id, problem)

    def _engine(self) -> Engine:
        if self._docker is None:
            self._docker = Engine(self.node_id)
        return self._docker

    def _remove_containers_locked(self, job_id: str) -> int:
        """Remove every container labelled with this node and ``job_id`` (the job's lock is
        held and its folder is gone, so none of them is live)."""
        try:
            ids = [cid for cid, _ in self._engine().labelled(job_id=job_id)]
        except DockerError as exc:
            log.warning("job %s: cannot list its containers: %s", job_id, exc)
            return 0
        problem = self._engine().remove_ids(ids)
        if problem:
            log.warning("job %s: cannot remove its containers: %s", job_id, problem)
            return 0
        return len(ids)

    def sweep(self) -> tuple[int, int]:
        """What earlier agents left behind (run once when the agent starts): folders
        without ``job.json`` and no live supervisor (a start cut short; never reported to
        the conductor, so never removed by it), and containers labelled with this node
        whose job is not one this node holds with desired state running. Each job is
        checked under its lock, so a start or stop running meanwhile is never undercut.
        Containers of other node ids and unlabelled ones are never touched.
        Returns (folders removed, containers removed)."""
        folders = 0
        try:
            names = sorted(p.name for p in self.jobs_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            names = []
        for name in names:
            with self.lock(name):
                d = self.jobs_dir / name
                if not d.is_dir() or (d / "job.json").exists():
                    continue
                state = supervisor.read_state(str(d / "state.json")) or {}
                if state.get("supervisor_pid") and supervisor.is_alive(state.get("supervisor_pid")):
                    continue
                shutil.rmtree(d, ignore_errors=True)
                folders += 1
        try:
            found = self._engine().labelled()
        except DockerError as exc:
            log.info("no sweep of leftover containers: %s", exc)
            return folders, 0
        containers = 0
        for job_id in sorted({job for _, job in found}):
            with self.lock(job_id):
                valid = bool(job_id) and "/" not in job_id and not job_id.startswith(".")
                if valid and (self.meta(job_id) or {}).get("desired_state") == "running":
                    continue
                containers += self._remove_containers_locked(job_id)
        return folders, containers

    def restart(self, job_id: str, epoch: int) -> str:
        with self.lock(job_id):
            meta = self.meta(job_id)
            if meta is None or int(meta.get("epoch", 0)) != epoch:
                return "no such copy"
            if not (self.dir(job_id) / "spec.json").exists():
                return "failed: the job never started here (no spec)"
            self._stop_locked(job_id)
            meta["desired_state"] = "running"
            self._write_meta(job_id, meta)
            supervisor.launch_detached(str(self.dir(job_id) / "spec.json"))
            self._wait_started(self.dir(job_id) / "state.json")
            return "restarted"



def _output_id(meta: dict[str, Any]) -> str:
    """The id of a copy's output (folders made before output ids existed: by epoch)."""
    return str(meta.get("output_id") or f"epoch-{meta.get('epoch', 0)}")
