"""The lake: a local folder or an S3 prefix, behind one small interface.

Paths inside the lake are relative, with '/' separators (`raw/games/dt=2026-11-20`).
Partitions are published atomically: files are built in a local staging folder and swapped in
as a whole, so a reader sees the old set or the new set and a crash leaves the old set intact.

* Local: the staging folder sits next to the target (`_tmp/`, ignored by Spark because of the
  leading underscore) and is swapped in with one `renameat2(RENAME_EXCHANGE)` system call on
  Linux (two renames elsewhere, repaired on the next access if a crash falls between them).
* S3 has no rename. Files are uploaded under `_tmp/` first (the slow part); then the old
  `_manifest.json` is removed, the files are copied into place server-side, stale files are
  deleted, and the new manifest is written last. Readers go through the manifest, so they see the
  old partition, no partition (and stop with a clear error), or the new one - never a mix.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import fcntl
import hashlib
import os
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

MANIFEST = "_manifest.json"
TMP_TAG = "igdb-lake=tmp"  # on S3 objects staged under _tmp/: the lifecycle rule's filter
SPARK_LEFTOVERS = ("_temporary",)  # what a killed Spark write leaves beside its output
SPARK_STAGING = ".spark-staging-"  # dynamic partition overwrite's staging folder

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2_exchange() -> Any | None:
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return getattr(libc, "renameat2", None)


_EXCHANGE = _renameat2_exchange()


def exchange_paths(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths; False where the OS cannot."""
    if _EXCHANGE is None:
        return False
    rc = _EXCHANGE(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc != 0:
        errno = ctypes.get_errno()
        if errno in (22, 38):  # EINVAL / ENOSYS: filesystem or kernel without the flag
            return False
        raise OSError(errno, os.strerror(errno), str(a))
    return True


class Lake(ABC):
    """What the pipeline needs from storage; nothing more."""

    uri: str

    def uri_of(self, rel: str) -> str:
        """Absolute URI of a lake path, for Spark and for messages."""
        return f"{self.uri.rstrip('/')}/{rel.lstrip('/')}"

    @abstractmethod
    def read_bytes(self, rel: str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""

    @abstractmethod
    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write one small file atomically (readers see the old or the new content)."""

    @abstractmethod
    def read_versioned(self, rel: str) -> tuple[bytes | None, str | None]:
        """The file's bytes and a version token for `write_if` ((None, None) when missing), so a
        read-modify-write can tell whether someone else wrote in between."""

    @abstractmethod
    def write_if(self, rel: str, data: bytes, expected: str | None) -> bool:
        """Write one small file atomically, but only if its version is still `expected` (None: only
        if it does not exist). False on a conflict: the caller re-reads and tries again."""

    @abstractmethod
    def list_files(self, rel: str) -> list[str]:
        """Names of the files directly inside a folder/prefix (empty when missing)."""

    @abstractmethod
    def list_dirs(self, rel: str) -> list[str]:
        """Names of the sub-folders/sub-prefixes directly inside (partitions such as `dt=...`)."""

    @abstractmethod
    def delete(self, rel: str) -> None:
        """Remove a file or a whole folder/prefix; no error when missing."""

    @abstractmethod
    @contextmanager
    def staged_partition(self, rel: str, run_id: str) -> Iterator[Path]:
        """Yield an empty local folder; on normal exit its files replace `rel` atomically."""

    @abstractmethod
    def leftovers(self, older_than: dt.timedelta) -> list[str]:
        """What killed writes left behind, last changed longer ago than `older_than`: partitions
        staged under `_tmp/` and never swapped in (or, on S3, uploads a killed publish left), and
        Spark's `_temporary` and `.spark-staging-*` folders. Paths relative to the lake."""

    def copy_partition(self, src_rel: str, dst_rel: str, run_id: str) -> list[str]:
        """Publish a copy of one partition's files as another partition (atomically, like any
        partition); hidden files (checksums) are left out. The names of the files copied."""
        names = [n for n in self.list_files(src_rel) if not n.startswith((".", "_"))]
        with self.staged_partition(dst_rel, run_id) as folder:
            for name in names:
                data = self.read_bytes(f"{src_rel}/{name}")
                assert data is not None, f"{src_rel}/{name} vanished during the copy"
                (folder / name).write_bytes(data)
        return names

    def read_text(self, rel: str) -> str | None:
        data = self.read_bytes(rel)
        return None if data is None else data.decode("utf-8")

    def write_text(self, rel: str, text: str) -> None:
        self.write_bytes(rel, text.encode("utf-8"))


class LocalLake(Lake):
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.uri = str(self.root)

    def path(self, rel: str) -> Path:
        return self.root / rel

    def read_bytes(self, rel: str) -> bytes | None:
        self._repair(self.path(rel).parent)
        try:
            return self.path(rel).read_bytes()
        except FileNotFoundError:
            return None

    def write_bytes(self, rel: str, data: bytes) -> None:
        target = self.path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read_versioned(self, rel: str) -> tuple[bytes | None, str | None]:
        # no lock needed: write_bytes swaps whole files in, so these bytes are one version
        data = self.read_bytes(rel)
        return data, _content_version(data)

    def write_if(self, rel: str, data: bytes, expected: str | None) -> bool:
        # the lock spans compare and write, so two writers (threads or processes) cannot both
        # see the same version and both write
        with self._exclusive(rel):
            try:
                current = self.path(rel).read_bytes()
            except FileNotFoundError:
                current = None
            if _content_version(current) != expected:
                return False
            self.write_bytes(rel, data)
            return True

    @contextmanager
    def _exclusive(self, rel: str) -> Iterator[None]:
        """Hold an exclusive flock on `<rel>.lock`. Opened afresh each time: flock locks belong to
        an open file, so threads of one process exclude each other too."""
        lock_path = self.path(f"{rel}.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def list_files(self, rel: str) -> list[str]:
        folder = self.path(rel)
        self._repair(folder)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_file())

    def list_dirs(self, rel: str) -> list[str]:
        folder = self.path(rel)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))

    def delete(self, rel: str) -> None:
        target = self.path(rel)
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)

    def leftovers(self, older_than: dt.timedelta) -> list[str]:
        limit = time.time() - older_than.total_seconds()
        found = []
        for folder, dirs, _ in os.walk(self.root):
            here = Path(folder)
            for name in list(dirs):
                path = here / name
                if name == "_tmp":
                    for staged in path.iterdir():
                        # `<partition>.previous` is what `_repair` restores while its partition is missing
                        kept_for_repair = staged.name.endswith(".previous") and \
                            not (here / staged.name.removesuffix(".previous")).exists()
                        if not kept_for_repair and _newest_change(staged) < limit:
                            found.append(str(staged.relative_to(self.root)))
                    dirs.remove(name)
                elif name in SPARK_LEFTOVERS or name.startswith(SPARK_STAGING):
                    if _newest_change(path) < limit:
                        found.append(str(path.relative_to(self.root)))
                    dirs.remove(name)
        return sorted(found)

    def _tmp_dir(self, final: Path) -> Path:
        return final.parent / "_tmp"

    def _repair(self, final: Path) -> None:
        """Finish a two-rename swap that a crash interrupted (non-Linux fallback only)."""
        backup = self._tmp_dir(final) / f"{final.name}.previous"
        if backup.is_dir() and not final.exists():
            os.rename(backup, final)

    @contextmanager
    def staged_partition(self, rel: str, run_id: str) -> Iterator[Path]:
        final = self.path(rel)
        tmp_root = self._tmp_dir(final)
        tmp_root.mkdir(parents=True, exist_ok=True)
        self._repair(final)
        for stale in tmp_root.glob(f"{final.name}.*"):  # left by a killed run of this partition
            if stale.name != f"{final.name}.previous":
                shutil.rmtree(stale, ignore_errors=True)
        staging = tmp_root / f"{final.name}.{run_id}"
        staging.mkdir()
        try:
            yield staging
            _fsync_tree(staging)
            self._swap_in(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            if tmp_root.is_dir() and not any(tmp_root.iterdir()):
                tmp_root.rmdir()

    def _swap_in(self, staging: Path, final: Path) -> None:
        if not final.exists():
            os.rename(staging, final)
        elif not exchange_paths(staging, final):
            backup = self._tmp_dir(final) / f"{final.name}.previous"
            os.rename(final, backup)
            os.rename(staging, final)
            shutil.rmtree(backup)
        _fsync_dir(final.parent)


def _newest_change(path: Path) -> float:
    """The latest modification time of a file or of anything in a folder."""
    if not path.is_dir():
        return path.stat().st_mtime
    times = [path.stat().st_mtime]
    for folder, _, files in os.walk(path):
        times.extend((Path(folder) / f).stat().st_mtime for f in files)
    return max(times)


def _content_version(data: bytes | None) -> str | None:
    """A local file's version is its content hash: equal content is the same state, so a
    read-modify-write based on it stays correct even if the file was rewritten in between."""
    return None if data is None else hashlib.sha256(data).hexdigest()


def _fsync_tree(folder: Path) -> None:
    for file in folder.iterdir():
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3Lake(Lake):
    """S3 through boto3; `AWS_ENDPOINT_URL` points it at moto or MinIO in tests and Docker."""

    def __init__(self, uri: str, staging_root: str | Path | None = None) -> None:
        import boto3  # only an s3:// lake needs it: the heaviest import of a local command

        parts = urlsplit(uri)
        self.uri = uri.rstrip("/")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.s3 = boto3.client("s3")
        self.staging_root = Path(staging_root) if staging_root else None

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel.lstrip('/')}" if self.prefix else rel.lstrip("/")

    def read_bytes(self, rel: str) -> bytes | None:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=self.key(rel))["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None

    def write_bytes(self, rel: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=self.key(rel), Body=data)

    def read_versioned(self, rel: str) -> tuple[bytes | None, str | None]:
        try:
            answer = self.s3.get_object(Bucket=self.bucket, Key=self.key(rel))
        except self.s3.exceptions.NoSuchKey:
            return None, None
        return answer["Body"].read(), answer["ETag"]

    def write_if(self, rel: str, data: bytes, expected: str | None) -> bool:
        # S3 conditional writes: the bucket itself refuses a put whose condition no longer holds
        condition = {"IfNoneMatch": "*"} if expected is None else {"IfMatch": expected}
        try:
            self.s3.put_object(Bucket=self.bucket, Key=self.key(rel), Body=data, **condition)
        except self.s3.exceptions.ClientError as exc:
            if _is_write_conflict(exc):
                return False
            raise
        return True

    def _keys(self, prefix: str) -> Iterator[str]:
        return (key for key, _ in self._objects(prefix))

    def list_files(self, rel: str) -> list[str]:
        prefix = self.key(rel).rstrip("/") + "/"
        return sorted(k[len(prefix):] for k in self._keys(prefix) if "/" not in k[len(prefix):])

    def leftovers(self, older_than: dt.timedelta) -> list[str]:
        limit = dt.datetime.now(dt.UTC) - older_than
        root = f"{self.prefix}/" if self.prefix else ""
        old: set[str] = set()
        fresh: set[str] = set()  # folders of a write still going on: none of their objects go
        for key, modified in self._objects(root):
            parts = key[len(root):].split("/")
            for depth, part in enumerate(parts[:-1]):
                if part == "_tmp" and depth + 2 < len(parts):  # _tmp/<partition>.<run id>/<file>
                    folder = "/".join(parts[:depth + 2])
                elif part in SPARK_LEFTOVERS or part.startswith(SPARK_STAGING):
                    folder = "/".join(parts[:depth + 1])
                else:
                    continue
                (old if modified < limit else fresh).add(folder)
                break
        return sorted(old - fresh)

    def _objects(self, prefix: str) -> Iterator[tuple[str, dt.datetime]]:
        """Every object under the prefix, with when it was last written."""
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"], item["LastModified"]

    def list_dirs(self, rel: str) -> list[str]:
        prefix = self.key(rel).rstrip("/") + "/"
        names: set[str] = set()
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                name = common["Prefix"][len(prefix):].rstrip("/")
                if not name.startswith(("_", ".")):
                    names.add(name)
        return sorted(names)

    def delete(self, rel: str) -> None:
        key = self.key(rel)
        keys = [key, *self._keys(key.rstrip("/") + "/")]
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start:start + 1000]]
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    @contextmanager
    def staged_partition(self, rel: str, run_id: str) -> Iterator[Path]:
        if self.staging_root is not None:
            self.staging_root.mkdir(parents=True, exist_ok=True)
        local = Path(tempfile.mkdtemp(prefix="partition-", dir=self.staging_root))
        parent, _, name = rel.rstrip("/").rpartition("/")
        staged = f"{parent}/_tmp/{name}.{run_id}"
        try:
            yield local
            files = sorted(p.name for p in local.iterdir() if p.is_file())
            data_files = [f for f in files if f != MANIFEST]
            for name_ in data_files:  # slow part first: the live partition is untouched meanwhile
                # tagged, so the bucket's lifecycle rule (conf/emr/lake-lifecycle.json) expires what a
                # killed publish leaves here
                self.s3.upload_file(str(local / name_), self.bucket, self.key(f"{staged}/{name_}"),
                                    ExtraArgs={"Tagging": TMP_TAG})
            self.delete(f"{rel}/{MANIFEST}")  # from here on, readers see "no partition"
            for name_ in data_files:
                self.s3.copy(
                    {"Bucket": self.bucket, "Key": self.key(f"{staged}/{name_}")},
                    self.bucket,
                    self.key(f"{rel}/{name_}"),
                    ExtraArgs={"TaggingDirective": "REPLACE", "Tagging": ""},  # the live copy must never expire
                )
            for stale in set(self.list_files(rel)) - set(files):
                self.delete(f"{rel}/{stale}")
            if MANIFEST in files:
                self.s3.upload_file(str(local / MANIFEST), self.bucket, self.key(f"{rel}/{MANIFEST}"))
        finally:
            shutil.rmtree(local, ignore_errors=True)
            self.delete(staged)


# 412: the condition failed; 409: a concurrent conditional write won; 404: the object expected
# (IfMatch) was deleted meanwhile. All mean "someone else changed it": re-read and retry.
_CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey"})


def _is_write_conflict(exc: Any) -> bool:
    """Whether a botocore ClientError from a conditional put means a lost race, not a failure."""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error.get("Code") in _CONFLICT_CODES or status in (409, 412)


def open_lake(uri: str, staging_root: str | Path | None = None) -> Lake:
    if uri.startswith("s3://"):
        return S3Lake(uri, staging_root)
    return LocalLake(uri)
