"""Wire sources, runners, the loop and the HTTP endpoint together (``watch``, ``sync``, ``serve``)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from symphony.gitops.config import ServerConfig, SourceConfig
from symphony.gitops.http import StatusServer
from symphony.gitops.loop import Loop
from symphony.gitops.ownership import Claims, RunBy, retire
from symphony.gitops.report import status_document
from symphony.gitops.runner import PassResult, SourceRunner
from symphony.reconciler import Reconciler
from symphony.sources import FilesSource, GitSource, Source, WatchedFolder

GIT_INTERVAL = 5.0


def make_source(config: SourceConfig) -> Source:
    if config.type == "git":
        assert config.repo is not None
        return GitSource(
            config.repo,
            branch=config.branch,
            path=config.path,
            interval=config.interval or GIT_INTERVAL,
            shallow=config.shallow,
            name=config.name,
        )
    if config.type == "watch":
        return WatchedFolder(
            list(config.paths),
            name=config.name,
            interval=config.interval or 2.0,
            **({"debounce_ms": config.debounce_ms} if config.debounce_ms else {}),
        )
    return FilesSource(list(config.paths), name=config.name, interval=config.interval or 1.0)


def make_runners(
    configs: Sequence[SourceConfig],
    *,
    log: Callable[[str], None],
    cluster_override: str | None = None,
    run_by: RunBy | None = None,
) -> list[SourceRunner]:
    """One runner per source, sharing one reconciler and one view of who declares what.

    For ``serve``, sources its config file ran before and lists no more are retired
    first: what they own may then be taken over.
    """
    from symphony.errors import UserError

    reconciler = Reconciler()  # shared: one connection per cluster
    sources = [make_source(config) for config in configs]
    ids = [s.id for s in sources]
    for i, ident in enumerate(ids):
        if ident in ids[:i]:
            raise UserError(f"two sources share the id {ident!r}; give one a name")
    if run_by is not None:
        for ident in retire(run_by, ids):
            log(f"{ident}: no longer in {run_by.config}: what it owns may be taken over")
    claims = Claims(tuple(ids))
    return [
        SourceRunner(
            source,
            reconciler=reconciler,
            allow_empty=config.allow_empty,
            log=log,
            cluster_override=cluster_override,
            adopt=config.adopt,
            claims=claims,
            run_by=run_by,
        )
        for source, config in zip(sources, configs, strict=True)
    ]


@contextmanager
def stop_on_signals(stop: threading.Event, wake: Callable[[], None]) -> Iterator[None]:
    """SIGINT and SIGTERM end the loop after the pass in progress."""

    def handler(_signum: int, _frame: Any) -> None:
        stop.set()
        wake()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_once(runners: Sequence[SourceRunner]) -> list[PassResult]:
    results = []
    for runner in runners:
        results.append(runner.reconcile("once"))
        runner.running = False
        runner.source.close()
        runner.save()
    return results


def run_forever(
    runners: Sequence[SourceRunner],
    *,
    resync: Sequence[float],
    server: ServerConfig | None = None,
    on_ready: Callable[[str | None], None] = lambda _address: None,
) -> None:
    """Until SIGINT/SIGTERM; with ``server``, also the HTTP endpoint."""
    stop = threading.Event()
    loop = Loop(runners, resync=resync)
    http: StatusServer | None = None
    if server is not None:
        observer = Reconciler()  # its own cluster connections: requests run on other threads
        try:
            http = StatusServer(
                loop,
                lambda: status_document(runners, observer),
                host=server.host,
                port=server.port,
                secret=server.hook_secret,
            )
        except OSError as exc:
            from symphony.errors import OperationFailed

            raise OperationFailed(
                f"cannot listen on {server.host}:{server.port}: {exc.strerror}"
            ) from None
        http.start()
    with stop_on_signals(stop, loop.wake):
        on_ready(http.address if http else None)
        try:
            loop.run(stop)
        finally:
            if http is not None:
                http.stop()


def stamp() -> str:
    return time.strftime("%H:%M:%S")
