"""The node agent: one outbound gRPC stream to the conductor, kept alive forever.

Per connection: a hello carrying every job copy the node holds, then heartbeats,
status changes and log lines on one writer (each job's output from where the
conductor's welcome says it holds it, so nothing queued on a broken stream is lost), while conductor requests are carried
out in worker threads (a slow download never stalls the stream or the heartbeats).
When the stream breaks, jobs keep running under their supervisors and the agent
reconnects with backoff and jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import socket
from collections.abc import Callable

import grpc

from symphony.node.config import NodeSettings
from symphony.node.connection import Backoff, credentials, open_channel
from symphony.node.exec import run_beside
from symphony.node.jobs import JobManager
from symphony.node.metrics import Metrics
from symphony.proto import protocol_pb2 as pb
from symphony.proto import protocol_pb2_grpc as pb_grpc

log = logging.getLogger("symphony.node")

AGENT_VERSION = "1"
POLL_SEC = 0.05  # how often job state files and logs are checked while connected
OUTBOX_LOG_LIMIT = 64  # read no more output while this many messages wait to be sent
FATAL_CODES = {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED}


class Agent:
    def __init__(self, settings: NodeSettings) -> None:
        self.settings = settings
        self.jobs = JobManager(
            settings.work_dir, settings.node_id,
            advertise_address=settings.advertise_address, stop_timeout=settings.stop_timeout_sec,
        )
        self.metrics = Metrics()
        self.backoff = Backoff(settings.reconnect_min_sec, settings.reconnect_max_sec)
        self.job_locks: dict[str, asyncio.Lock] = {}
        self.connected = asyncio.Event()
        self.sessions = 0
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        creds = credentials(self.settings)
        sweep = asyncio.create_task(self._sweep())  # beside the first connection, not before it
        self.tasks.add(sweep)
        sweep.add_done_callback(self.tasks.discard)
        while not stop.is_set():
            channel = open_channel(self.settings, creds)
            try:
                session = asyncio.create_task(self._session(channel))
                stopper = asyncio.create_task(stop.wait())
                done, _ = await asyncio.wait({session, stopper}, return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                if session in done:
                    session.result()
                else:
                    session.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await session
            except grpc.aio.AioRpcError as exc:
                self._report(exc)
            except Exception:
                log.exception("connection to %s failed", self.settings.conductor_addr)
            finally:
                self.connected.clear()
                await channel.close(grace=None)
            if stop.is_set():
                break
            delay = self.backoff.next_delay()
            log.info("reconnecting to %s in %.1fs", self.settings.conductor_addr, delay)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    async def _sweep(self) -> None:
        """Remove what earlier agents of this node left behind (see :meth:`JobManager.sweep`)."""
        try:
            folders, containers = await asyncio.to_thread(self.jobs.sweep)
        except Exception:
            log.exception("sweeping leftovers failed")
            return
        log.info("swept leftovers: %d job folders, %d containers", folders, containers)

    def _report(self, exc: grpc.aio.AioRpcError) -> None:
        code, details = exc.code(), exc.details()
        if code in FATAL_CODES:
            log.error("the conductor refused this node: %s (%s)", details, code.name)
        elif code == grpc.StatusCode.ALREADY_EXISTS:
            log.warning("conductor: %s; retrying", details)
        else:
            log.warning("stream to %s ended: %s %s", self.settings.conductor_addr, code.name, details or "")

    async def _session(self, channel: grpc.aio.Channel) -> None:
        stub = pb_grpc.ConductorServiceStub(channel)
        outbox: asyncio.Queue[pb.NodeToConductor] = asyncio.Queue()
        hello, outputs = await asyncio.to_thread(self._hello)
        call = stub.Connect()
        await call.write(pb.NodeToConductor(hello=hello))
        first = await call.read()
        if first is grpc.aio.EOF:
            await call.code()  # raises AioRpcError with the conductor's reason
            raise ConnectionError("the conductor closed the stream")
        if first.WhichOneof("msg") != "welcome":
            raise ConnectionError(f"expected a welcome, got {first.WhichOneof('msg')}")
        log.info("connected to conductor %s as %s", self.settings.conductor_addr, self.settings.node_id)
        cursors = {c.job_id: (c.output_id, c.end_offset) for c in first.welcome.log_cursors}
        self.jobs.resume_logs(outputs, cursors)
        self.backoff.reset()
        self.sessions += 1
        self.connected.set()
        await asyncio.to_thread(self.jobs.changed_statuses)  # the hello carried these
        tasks = [
            asyncio.create_task(self._writer(call, outbox)),
            asyncio.create_task(self._heartbeats(outbox)),
            asyncio.create_task(self._watch_jobs(outbox)),
            asyncio.create_task(self._reader(call, outbox)),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            call.cancel()

    def _hello(self) -> tuple[pb.NodeHello, dict[str, str]]:
        """The hello, and each reported copy's output id (the welcome's cursors refer to them)."""
        s = self.settings
        static = self.metrics.static()
        outputs = self.jobs.output_ids()
        return pb.NodeHello(
            node_id=s.node_id, groups=list(s.groups), capacities_total=s.capacities_total,
            cpu=static["cpu"], memory=static["memory"], storage_mounts=static["storage_mounts"],
            gpus=static["gpus"], heartbeat_sec=s.heartbeat_sec, advertise_address=s.advertise_address,
            agent_version=AGENT_VERSION, hostname=socket.gethostname(),
            jobs=pb.DeploymentStatusList(deployments=self.jobs.all_statuses(), complete=True),
        ), outputs

    async def _writer(self, call: grpc.aio.StreamStreamCall, outbox: asyncio.Queue[pb.NodeToConductor]) -> None:
        while True:
            msg = await outbox.get()
            await call.write(msg)

    async def _heartbeats(self, outbox: asyncio.Queue[pb.NodeToConductor]) -> None:
        while True:
            used = await asyncio.to_thread(self.jobs.used_capacity)
            hb = await asyncio.to_thread(self.metrics.heartbeat, self.settings.node_id, used)
            outbox.put_nowait(pb.NodeToConductor(heartbeat=hb))
            await asyncio.sleep(self.settings.heartbeat_sec)

    async def _watch_jobs(self, outbox: asyncio.Queue[pb.NodeToConductor]) -> None:
        while True:
            statuses, logs = await asyncio.to_thread(self._poll, outbox.qsize() < OUTBOX_LOG_LIMIT)
            for entry in logs:
                outbox.put_nowait(pb.NodeToConductor(deployment_logs=entry))
            if statuses:
                outbox.put_nowait(pb.NodeToConductor(
                    deployment_status_list=pb.DeploymentStatusList(deployments=statuses)))
            await asyncio.sleep(POLL_SEC)

    def _poll(self, with_logs: bool) -> tuple[list[pb.DeploymentStatus], list[pb.DeploymentLogs]]:
        return self.jobs.changed_statuses(), self.jobs.read_logs() if with_logs else []

    async def _reader(self, call: grpc.aio.StreamStreamCall, outbox: asyncio.Queue[pb.NodeToConductor]) -> None:
        while True:
            msg = await call.read()
            if msg is grpc.aio.EOF:
                await call.code()
                raise ConnectionError("the conductor ended the stream")
            kind = msg.WhichOneof("msg")
            if kind == "deployment_req":
                req = msg.deployment_req
                self._spawn(req.job_id, msg.seq, outbox, functools.partial(self.jobs.start, req))
            elif kind == "deployment_update":
                self._on_update(msg, outbox)
            elif kind == "exec_request":  # symphony exec: run beside a job, answer when done
                task = asyncio.create_task(self._exec(msg.exec_request, outbox))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def _exec(self, req: pb.ExecRequest, outbox: asyncio.Queue[pb.NodeToConductor]) -> None:
        result = await asyncio.to_thread(run_beside, self.jobs.jobs_dir, req)
        outbox.put_nowait(pb.NodeToConductor(exec_result=result))

    def _on_update(self, msg: pb.ConductorToNode, outbox: asyncio.Queue[pb.NodeToConductor]) -> None:
        up = msg.deployment_update
        which = up.WhichOneof("msg")
        if which == "status" and up.status in ("stopped", "removed"):
            remove = up.status == "removed"
            self._spawn(up.job_id, msg.seq, outbox, lambda: self.jobs.stop(up.job_id, up.epoch, remove=remove))
        elif which == "trigger_restart" or (which == "status" and up.status == "running"):
            self._spawn(up.job_id, msg.seq, outbox, lambda: self.jobs.restart(up.job_id, up.epoch))
        else:
            log.warning("ignored deployment update %s for %s", which, up.job_id)

    def _spawn(
        self, job_id: str, seq: int, outbox: asyncio.Queue[pb.NodeToConductor], work: Callable[[], str]
    ) -> None:
        """Run ``work`` in a thread, in arrival order per job, then acknowledge it."""
        lock = self.job_locks.setdefault(job_id, asyncio.Lock())

        async def run() -> None:
            async with lock:
                try:
                    result = await asyncio.to_thread(work)
                    ok = not result.startswith("failed")
                except Exception as exc:
                    log.exception("job %s", job_id)
                    result, ok = f"failed: {exc}", False
            log.info("job %s: %s", job_id, result)
            statuses = await asyncio.to_thread(self.jobs.changed_statuses)
            if statuses:
                outbox.put_nowait(pb.NodeToConductor(
                    deployment_status_list=pb.DeploymentStatusList(deployments=statuses)))
            outbox.put_nowait(pb.NodeToConductor(ack=pb.Ack(message=f"{job_id}: {result}", ref_seq=seq, ok=ok)))

        task = asyncio.create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


async def serve(settings: NodeSettings, *, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    agent = Agent(settings)
    print(f"symphony node {settings.node_id}: connecting to {settings.conductor_addr}", flush=True)
    await agent.run(stop)
    log.info("node agent stopped; its jobs keep running under their supervisors")


def run(settings: NodeSettings) -> None:
    asyncio.run(serve(settings))
