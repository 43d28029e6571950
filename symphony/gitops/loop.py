"""When passes run: on a change (poll, watcher, webhook), on every resync, and after a
failure with exponential backoff. The clock is injectable, so tests of resyncs and
backoffs step through time instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from symphony.errors import UserError
from symphony.gitops.runner import PassResult, SourceRunner

DEFAULT_RESYNC = 30.0
BACKOFF_BASE = 1.0
BACKOFF_MAX = 60.0


@dataclass
class Schedule:
    resync: float
    next_poll: float = 0.0
    next_resync: float = 0.0
    retry_at: float | None = None
    failures: int = 0
    triggered: str | None = "start"


class Loop:
    def __init__(
        self,
        runners: Sequence[SourceRunner],
        *,
        resync: float | Sequence[float] = DEFAULT_RESYNC,
        clock: Callable[[], float] = time.monotonic,
        backoff_base: float = BACKOFF_BASE,
        backoff_max: float = BACKOFF_MAX,
        on_pass: Callable[[SourceRunner, PassResult], None] | None = None,
    ) -> None:
        self.runners = list(runners)
        resyncs = [resync] * len(self.runners) if isinstance(resync, int | float) else list(resync)
        self.clock = clock
        now = clock()
        self.schedules = [Schedule(r, next_poll=now, next_resync=now + r) for r in resyncs]
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.on_pass = on_pass
        self.wakeup = threading.Event()
        self._lock = threading.Lock()
        for runner in self.runners:  # an owner that prunes wakes the sources that wanted it
            if runner.claims is not None:
                runner.claims.wake = self._notifier_for("released")

    def wake(self) -> None:
        self.wakeup.set()

    def trigger(
        self, *, kind: str | None = None, source: str | None = None, reason: str = "hook"
    ) -> list[str]:
        """Run a pass of these sources at once (a webhook, a watcher); returns their ids."""
        hit = []
        with self._lock:
            for runner, sched in zip(self.runners, self.schedules, strict=True):
                if (kind is None or runner.source.kind == kind) and (
                    source is None or runner.id == source
                ):
                    sched.triggered = sched.triggered or reason
                    hit.append(runner.id)
        if hit:
            self.wake()
        return hit

    def _notifier_for(self, reason: str) -> Callable[[str], None]:
        def wake(source: str) -> None:
            self.trigger(source=source, reason=reason)

        return wake

    def _notifier(self, source: str) -> Callable[[], None]:
        def changed() -> None:
            self.trigger(source=source, reason="change")

        return changed

    def backoff(self, failures: int) -> float:
        return float(min(self.backoff_max, self.backoff_base * 2 ** max(0, failures - 1)))

    def due(self, runner: SourceRunner, sched: Schedule, now: float) -> tuple[str | None, bool]:
        """Why ``runner`` should run a pass now (or None), and whether it already polled."""
        with self._lock:
            reason, sched.triggered = sched.triggered, None
        if reason:
            return reason, False
        if sched.retry_at is not None:
            return ("retry" if now >= sched.retry_at else None), False
        if now >= sched.next_resync:
            return "resync", False
        if now >= sched.next_poll:
            sched.next_poll = now + runner.source.interval
            if runner.source.poll():
                return "change", True
        return None, False

    def step(self) -> float:
        """Run every pass that is due; return the seconds until the next one may be."""
        for runner, sched in zip(self.runners, self.schedules, strict=True):
            try:
                reason, polled = self.due(runner, sched, self.clock())
            except UserError as exc:
                result = runner.fail(exc.lines(), "poll", self.clock(), runner.wall())
                self._after(runner, sched, result)
                continue
            if reason is not None:
                try:
                    result = runner.reconcile(reason, polled=polled)
                except Exception as exc:  # a bug or a library error must not stop the loop
                    line = f"{type(exc).__name__}: {exc}"
                    result = runner.fail([line], reason, self.clock(), runner.wall())
                self._after(runner, sched, result)
        return self.next_delay()

    def _after(self, runner: SourceRunner, sched: Schedule, result: PassResult) -> None:
        now = self.clock()
        if result.ok:
            sched.failures, sched.retry_at = 0, None
            sched.next_resync = now + sched.resync
            sched.next_poll = max(sched.next_poll, now + runner.source.interval)
        else:
            sched.failures += 1
            sched.retry_at = now + min(self.backoff(sched.failures), sched.resync)
        if self.on_pass is not None:
            self.on_pass(runner, result)

    def next_delay(self) -> float:
        now = self.clock()
        times = []
        for sched in self.schedules:
            if sched.triggered:
                return 0.0
            if sched.retry_at is not None:
                times.append(sched.retry_at)
            else:
                times += [sched.next_poll, sched.next_resync]
        return max(0.0, min(times) - now) if times else 1.0

    def start(self) -> None:
        """Let sources that notice changes themselves (watchers) trigger their passes."""
        for runner in self.runners:
            runner.source.start(self._notifier(runner.id))

    def run(self, stop: threading.Event) -> None:
        """Until ``stop`` is set (a signal handler sets it and calls :meth:`wake`)."""
        self.start()
        try:
            while not stop.is_set():
                self.wakeup.clear()
                delay = self.step()
                if stop.is_set():
                    break
                self.wakeup.wait(delay)
        finally:
            for runner in self.runners:
                runner.source.close()
                runner.running = False
                runner.save()
