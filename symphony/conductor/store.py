"""The conductor's durable state: SQLite in WAL mode.

Deployments, jobs (one per replica: where it is placed, its epoch, what its node last
reported), known nodes and events. Every write commits before the conductor acts on
it, so a ``kill -9`` at any point loses nothing; ``synchronous=NORMAL`` in WAL mode is
durable against process crashes (only a power cut can drop the last transactions).
Calls are short and run on the event loop's thread; the connection is not shared.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
  id TEXT PRIMARY KEY,
  spec TEXT NOT NULL,
  spec_hash TEXT NOT NULL,
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
  job_id TEXT PRIMARY KEY,
  deployment_id TEXT NOT NULL,
  replica INTEGER NOT NULL,
  node_id TEXT,
  epoch INTEGER NOT NULL DEFAULT 0,
  reason TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL DEFAULT '{}',
  last_node_id TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_deployment ON jobs(deployment_id);
CREATE TABLE IF NOT EXISTS nodes (
  node_id TEXT PRIMARY KEY,
  info TEXT NOT NULL,
  first_seen REAL NOT NULL,
  last_seen REAL NOT NULL,
  lost INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts REAL NOT NULL,
  kind TEXT NOT NULL,
  deployment_id TEXT,
  job_id TEXT,
  node_id TEXT,
  message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_deployment ON events(deployment_id, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class DeploymentRow:
    id: str
    spec: dict[str, Any]
    spec_hash: str
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class JobRow:
    """One replica of a deployment. ``node_id`` None = pending (``reason`` says why).

    ``last_node_id`` is the node the current copy (``epoch``) was placed on; it stays
    when the job is taken off that node with its folder kept (a stop), so that a later
    delete or a placement elsewhere can tell that node to remove the folder. Placing a
    job sets it; None once that node was told to remove the copy.
    """

    job_id: str
    deployment_id: str
    replica: int
    node_id: str | None = None
    epoch: int = 0
    reason: str = ""
    status: dict[str, Any] = field(default_factory=dict)
    last_node_id: str | None = None

    def __post_init__(self) -> None:
        if self.node_id is not None and self.last_node_id != self.node_id:
            object.__setattr__(self, "last_node_id", self.node_id)

    def with_(self, **changes: Any) -> JobRow:
        return replace(self, **changes)


@dataclass(frozen=True)
class NodeRow:
    node_id: str
    info: dict[str, Any]
    first_seen: float
    last_seen: float
    lost: bool


@dataclass(frozen=True)
class EventRow:
    id: int
    ts: float
    kind: str
    deployment_id: str | None
    job_id: str | None
    node_id: str | None
    message: str


class Store:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Bring a database made by an older conductor up to :data:`SCHEMA`."""
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(jobs)")}
        if "last_node_id" not in columns:
            with self.transaction():
                self.db.execute("ALTER TABLE jobs ADD COLUMN last_node_id TEXT")
                # where each job was last put, from the events (stopped copies' folders)
                self.db.execute(
                    "UPDATE jobs SET last_node_id = COALESCE(node_id, (SELECT e.node_id FROM events e"
                    " WHERE e.job_id = jobs.job_id AND e.kind IN ('placed', 'adopted') ORDER BY e.id DESC LIMIT 1))"
                )

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes so that they land together or not at all."""
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ---- deployments ----
    def put_deployment(self, dep_id: str, spec: dict[str, Any], spec_hash: str) -> DeploymentRow:
        now = time.time()
        old = self.get_deployment(dep_id)
        created = old.created_at if old else now
        self.db.execute(
            "INSERT OR REPLACE INTO deployments(id, spec, spec_hash, created_at, updated_at) VALUES (?,?,?,?,?)",
            (dep_id, json.dumps(spec), spec_hash, created, now),
        )
        return DeploymentRow(dep_id, spec, spec_hash, created, now)

    def get_deployment(self, dep_id: str) -> DeploymentRow | None:
        row = self.db.execute(
            "SELECT id, spec, spec_hash, created_at, updated_at FROM deployments WHERE id=?", (dep_id,)
        ).fetchone()
        return _deployment(row) if row else None

    def list_deployments(self) -> list[DeploymentRow]:
        rows = self.db.execute(
            "SELECT id, spec, spec_hash, created_at, updated_at FROM deployments ORDER BY created_at, id"
        ).fetchall()
        return [_deployment(r) for r in rows]

    def delete_deployment(self, dep_id: str) -> None:
        with self.transaction():
            self.db.execute("DELETE FROM jobs WHERE deployment_id=?", (dep_id,))
            self.db.execute("DELETE FROM deployments WHERE id=?", (dep_id,))

    # ---- jobs ----
    def put_job(self, job: JobRow) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO jobs(job_id, deployment_id, replica, node_id, epoch, reason, status, last_node_id)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (job.job_id, job.deployment_id, job.replica, job.node_id, job.epoch, job.reason, json.dumps(job.status),
             job.last_node_id),
        )

    def delete_job(self, job_id: str) -> None:
        self.db.execute("DELETE FROM jobs WHERE job_id=?", (job_id,))

    def get_job(self, job_id: str) -> JobRow | None:
        row = self.db.execute(
            "SELECT job_id, deployment_id, replica, node_id, epoch, reason, status, last_node_id FROM jobs WHERE job_id=?",
            (job_id,),
        ).fetchone()
        return _job(row) if row else None

    def list_jobs(self, deployment_id: str | None = None) -> list[JobRow]:
        sql = "SELECT job_id, deployment_id, replica, node_id, epoch, reason, status, last_node_id FROM jobs"
        args: tuple[Any, ...] = ()
        if deployment_id is not None:
            sql += " WHERE deployment_id=?"
            args = (deployment_id,)
        return [_job(r) for r in self.db.execute(sql + " ORDER BY deployment_id, replica", args)]

    def next_epoch(self) -> int:
        """A conductor-wide, strictly increasing fencing token."""
        with self.transaction():
            row = self.db.execute("SELECT value FROM meta WHERE key='epoch'").fetchone()
            value = int(row[0]) + 1 if row else 1
            self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('epoch', ?)", (str(value),))
        return value

    # ---- nodes ----
    def put_node(self, node_id: str, info: dict[str, Any], *, lost: bool = False) -> None:
        now = time.time()
        self.db.execute(
            "INSERT INTO nodes(node_id, info, first_seen, last_seen, lost) VALUES (?,?,?,?,?)"
            " ON CONFLICT(node_id) DO UPDATE SET info=excluded.info, last_seen=excluded.last_seen, lost=excluded.lost",
            (node_id, json.dumps(info), now, now, int(lost)),
        )

    def set_node_lost(self, node_id: str, lost: bool) -> None:
        self.db.execute("UPDATE nodes SET lost=?, last_seen=? WHERE node_id=?", (int(lost), time.time(), node_id))

    def list_nodes(self) -> list[NodeRow]:
        rows = self.db.execute("SELECT node_id, info, first_seen, last_seen, lost FROM nodes ORDER BY node_id")
        return [NodeRow(r[0], json.loads(r[1]), r[2], r[3], bool(r[4])) for r in rows]

    # ---- events ----
    def add_event(
        self,
        kind: str,
        message: str,
        *,
        deployment_id: str | None = None,
        job_id: str | None = None,
        node_id: str | None = None,
    ) -> None:
        self.db.execute(
            "INSERT INTO events(ts, kind, deployment_id, job_id, node_id, message) VALUES (?,?,?,?,?,?)",
            (time.time(), kind, deployment_id, job_id, node_id, message),
        )

    def list_events(
        self,
        *,
        deployment_id: str | None = None,
        limit: int = 200,
        node_id: str | None = None,
        kind: str | None = None,
        after: int | None = None,
    ) -> list[EventRow]:
        """Matching events, oldest first: the newest ``limit`` of them, or with ``after``
        (an event id) the first ``limit`` after it, so a poller misses none."""
        sql = "SELECT id, ts, kind, deployment_id, job_id, node_id, message FROM events"
        where: list[str] = []
        args: list[Any] = []
        for column, value in (("deployment_id", deployment_id), ("node_id", node_id), ("kind", kind)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        if after is not None:
            where.append("id>?")
            args.append(after)
        if where:
            sql += " WHERE " + " AND ".join(where)
        if after is not None:
            return [EventRow(*r) for r in self.db.execute(sql + " ORDER BY id LIMIT ?", (*args, limit))]
        rows = self.db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [EventRow(*r) for r in reversed(rows)]


def _deployment(row: tuple[Any, ...]) -> DeploymentRow:
    return DeploymentRow(row[0], json.loads(row[1]), row[2], row[3], row[4])


def _job(row: tuple[Any, ...]) -> JobRow:
    return JobRow(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]), row[7])
