"""``config.image`` for exec jobs: a .zip or .tar.gz (path, file:// or http(s) URL),
cached by its sha256 digest and unpacked once per digest.

Blocking work (downloads, hashing, unpacking): call it from a worker thread.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

CHUNK = 1 << 20
DOWNLOAD_TIMEOUT_SEC = 60


class ArtifactError(Exception):
    """The image could not be fetched or unpacked; the message says why, in one line."""


def _kind(name: str) -> str:
    lower = name.lower()
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith((".tar.gz", ".tgz", ".tar")):
        return "tar"
    raise ArtifactError(f"config.image {name!r}: expected a .zip, .tar.gz, .tgz or .tar archive")


def _fetch(image: str, dest: Path) -> None:
    parsed = urllib.parse.urlparse(image)
    try:
        if parsed.scheme in ("http", "https", "file"):
            with urllib.request.urlopen(image, timeout=DOWNLOAD_TIMEOUT_SEC) as resp, dest.open("wb") as out:
                shutil.copyfileobj(resp, out, CHUNK)
        elif parsed.scheme in ("", "file"):
            shutil.copyfile(Path(image).expanduser(), dest)
        else:
            raise ArtifactError(f"config.image {image!r}: unsupported URL scheme {parsed.scheme!r}")
    except ArtifactError:
        raise
    except Exception as exc:  # urllib raises many kinds; the job gets one clear line
        raise ArtifactError(f"config.image {image!r}: cannot fetch: {exc}") from exc


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _safe_members_tar(tar: tarfile.TarFile, root: Path) -> None:
    for member in tar.getmembers():
        target = (root / member.name).resolve()
        if not str(target).startswith(str(root.resolve())):
            raise ArtifactError(f"archive member {member.name!r} escapes the folder")


def _unpack(archive: Path, kind: str, dest: Path) -> None:
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    if not str((dest / name).resolve()).startswith(str(dest.resolve())):
                        raise ArtifactError(f"archive member {name!r} escapes the folder")
                zf.extractall(dest)
        else:
            with tarfile.open(archive) as tf:
                _safe_members_tar(tf, dest)
                tf.extractall(dest, filter="data")
    except ArtifactError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as exc:
        raise ArtifactError(f"cannot unpack {archive.name}: {exc}") from exc


def prepare_image(image: str, cache_dir: Path) -> Path:
    """Fetch ``image`` and return the folder it unpacks to (shared by every job using it)."""
    name = urllib.parse.urlparse(image).path or image
    kind = _kind(name)
    archives = cache_dir / "archives"
    unpacked = cache_dir / "unpacked"
    archives.mkdir(parents=True, exist_ok=True)
    unpacked.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=archives, suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _fetch(image, tmp)
        digest = _digest(tmp)
        suffix = ".zip" if kind == "zip" else ".tar"
        archive = archives / f"{digest}{suffix}"
        if archive.exists():
            tmp.unlink()
        else:
            os.replace(tmp, archive)
    finally:
        if tmp.exists():
            tmp.unlink()
    target = unpacked / digest
    if target.is_dir():
        return target
    staging = Path(tempfile.mkdtemp(dir=unpacked, prefix=f".{digest[:12]}-"))
    try:
        _unpack(archive, kind, staging)
        try:
            os.rename(staging, target)
        except OSError:  # another job unpacked the same digest first
            if not target.is_dir():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def materialise(image: str, cache_dir: Path, job_dir: Path) -> Path:
    """The image unpacked as the job's own folder: a copy, so a job that writes into its
    folder cannot change the cache that other jobs start from."""
    source = prepare_image(image, cache_dir)
    dest = job_dir / "app"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest, symlinks=True)
    return dest
