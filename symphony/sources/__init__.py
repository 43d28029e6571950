"""Where desired state comes from: files, a watched folder, a git repository.

A source only fetches and reads; deciding what to apply (and what a bad
document blocks) belongs to :mod:`symphony.gitops`, like Argo's gitops-engine
keeps fetching from git out of the sync engine.
"""

from symphony.sources.base import Broken, Snapshot, Source, source_id
from symphony.sources.files import FilesSource
from symphony.sources.git import GitSource
from symphony.sources.watched import WatchedFolder

__all__ = [
    "Broken",
    "FilesSource",
    "GitSource",
    "Snapshot",
    "Source",
    "WatchedFolder",
    "source_id",
]
