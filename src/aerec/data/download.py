"""Fetch a registered dataset archive into the data home: resumable, verified, extracted atomically.

The steps, each of which can only leave the data home in a known state:

1. A complete local copy (``<data home>/<folder>/<ratings file>``) returns at once, with no
   network access at all.
2. The archive streams to ``<data home>/<name>.zip.part``. A ``.part`` left by an interrupted run
   is resumed with an HTTP ``Range`` request; a server that ignores ``Range`` (answers 200) makes
   us start over from byte 0.
3. The finished file's size and pinned checksums (SHA-256 and/or MD5) are checked; a bad file is
   deleted and the error says what to do.
4. The zip is checked member by member (no absolute paths, no ``..``, no links, no zip bombs) and
   unpacked into a temporary folder inside the data home, which then replaces the final folder in
   one ``os.replace``: a reader never sees a half-extracted dataset.

Only the standard library's ``urllib`` does the networking. The URL comes from the ``url``
argument, else ``$AEREC_MIRROR`` (a base URL that serves the same file names as GroupLens), else
the registry. A plain path or a ``file://`` URL names an archive already on disk (an offline
machine): it is copied in place of step 2 and checked and unpacked like a download.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO, Any

from aerec.data import registry
from aerec.data.registry import DatasetSpec
from aerec.errors import DatasetError

__all__ = ["MIRROR_ENV", "download", "resolve_url"]

_log = logging.getLogger(__name__)

MIRROR_ENV = "AEREC_MIRROR"
CHUNK = 1 << 20  # bytes read from the network / written to disk at a time
DEFAULT_TIMEOUT = 60.0  # seconds a connect or a single read may stall before we give up
MARKER = ".aerec-download.json"  # provenance record written into each extracted folder
# Reject archives that claim to unpack to more than this many times their own size (+ slack):
# MovieLens zips inflate about 4x; a zip bomb inflates thousands of times.
MAX_INFLATION = 100


def resolve_url(spec: DatasetSpec, url: str | None = None) -> str:
    """The URL to fetch ``spec`` from: ``url``, else ``$AEREC_MIRROR/<archive name>``, else the registry's."""
    if url:
        return url
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if mirror:
        return f"{mirror.rstrip('/')}/{spec.archive_name}"
    if spec.url is None:
        raise DatasetError(f"{spec.name} has no download URL")
    return spec.url


def download(
    name: str,
    *,
    data_home: str | os.PathLike[str] | None = None,
    progress: bool = True,
    force: bool = False,
    url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Download, verify and unpack the registered dataset ``name``; return its folder.

    Args:
        name: a downloadable registry name, e.g. ``"ml-1m"``.
        data_home: where datasets live (default: :func:`aerec.data.registry.data_home`).
        progress: report progress as log records on ``aerec.data.download`` (the ``aerec``
            command draws them as a bar on stderr).
        force: fetch and unpack again even when a complete copy exists (replacing it atomically).
        url: fetch from here instead of ``$AEREC_MIRROR`` or the registry's URL. The pinned size
            and checksums still apply: a mirror must serve the very same bytes.
        timeout: seconds a connection attempt or a single read may stall.

    Raises:
        DatasetError: unknown or built-in name; network failure (the URL and what to try are in
            the message; a partial download is kept and resumed by the next call); size or
            checksum mismatch; corrupt or unsafe zip (the bad file is deleted).
    """
    spec = registry.get_spec(name, download=True)
    if spec.kind != "download":
        raise DatasetError(f"{spec.name} is built in: there is nothing to download; load it by name")
    assert spec.folder is not None and spec.ratings_file is not None
    home = registry.data_home(data_home)
    final = home / spec.folder
    if not force and (final / spec.ratings_file).is_file():
        return final  # a complete local copy: no network

    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(
            f"cannot create the data home {home}: {exc.strerror or exc}. Fix: pass --data-home DIR "
            f"or set {registry.DATA_HOME_ENV} to a writable folder."
        ) from None
    part = home / f"{spec.name}.zip.part"
    if force:
        part.unlink(missing_ok=True)
    source = resolve_url(spec, url)
    local = _local_archive(source)
    if local is not None:  # a copy already on disk (offline machines): copied, then checked the same way
        if not local.is_file():
            raise DatasetError(
                f"no file at {local}. Fix: give the path (or file:// URL) of the downloaded {spec.archive_name}, "
                f"or an http(s):// URL; the official one is {spec.url}."
            )
        shutil.copyfile(local, part)
    elif urllib.parse.urlparse(source).scheme.lower() not in ("http", "https"):
        raise DatasetError(
            f"cannot download from {source!r}: aerec fetches http(s):// URLs and copies local archives "
            f"(a path or a file:// URL). Fix: give one of those; the official archive is {spec.url}."
        )
    elif not _part_is_complete(part, spec):
        _fetch(source, part, spec, progress=progress, timeout=timeout)
    _verify(part, spec, source)
    _extract(part, spec, home, final, source)
    part.unlink(missing_ok=True)
    return final


# ----------------------------------------------------------------------------- fetching
def _local_archive(source: str) -> Path | None:
    """The file behind a ``file://`` URL or a plain path; None for a network URL."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if not parsed.scheme or (len(parsed.scheme) == 1 and os.name == "nt"):  # C:\... is a path
        return Path(source).expanduser()
    return None


def _part_is_complete(part: Path, spec: DatasetSpec) -> bool:
    """True when a leftover ``.part`` already has the pinned size; drops one that is too big."""
    if not part.exists() or spec.size is None:
        return False
    size = part.stat().st_size
    if size > spec.size:
        part.unlink()
        return False
    return size == spec.size


def _fetch(url: str, part: Path, spec: DatasetSpec, *, progress: bool, timeout: float) -> None:
    """Stream ``url`` into ``part``, resuming from its current length when the server allows."""
    for _attempt in range(2):  # a second pass only when a resume turned out impossible
        offset = part.stat().st_size if part.exists() else 0
        response = _open(url, spec, offset, timeout, part.parent)
        if response is _COMPLETE:  # 416 on a resume: the .part already holds the whole file
            return
        if response is _RESTART:  # 416 and a .part that does not fit the remote file
            part.unlink(missing_ok=True)
            continue
        with response:
            start = _resume_start(response, offset)
            if start is None:  # the server sent something other than our byte range
                if response.status == 200:
                    start = 0  # it ignored Range and sent the whole file: start over
                else:
                    part.unlink(missing_ok=True)
                    continue
            total = _total_size(response, start)
            if spec.size is not None and total is not None and total != spec.size:
                part.unlink(missing_ok=True)
                raise DatasetError(
                    f"{url} offers {total:,} bytes but the published {spec.archive_name} is "
                    f"{spec.size:,} bytes: this is not the same file. Fix: check the URL (or "
                    f"{MIRROR_ENV}); the official one is {spec.url}."
                )
            _stream(response, part, spec, url, start=start, total=total or spec.size, progress=progress)
            return
    raise DatasetError(
        f"{url} did not honour a resumed download twice. Fix: run the download again with --force."
    )


_COMPLETE = object()  # _open's answer when a resume is refused because nothing is missing
_RESTART = object()  # _open's answer when a resume is refused and the .part must go


def _open(url: str, spec: DatasetSpec, offset: int, timeout: float, home: Path) -> Any:
    """Send the GET (with ``Range`` when resuming): the response, or _COMPLETE / _RESTART."""
    from aerec import __version__

    headers = {"User-Agent": f"aerec/{__version__} (+dataset download)"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        request = urllib.request.Request(url, headers=headers)
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # "Range not satisfiable": our .part is as long as the file (or longer, or stale).
            total = _content_range_total(exc.headers.get("Content-Range"))
            exc.close()
            return _COMPLETE if total == offset else _RESTART
        exc.close()
        raise DatasetError(
            f"downloading {spec.name} from {url} failed: HTTP {exc.code} {exc.reason}. Fix: check the "
            f"URL{' (or ' + MIRROR_ENV + ')' if url != spec.url else ''}; the official archive is "
            f"{spec.url} (see https://grouplens.org/datasets/movielens/)."
        ) from None
    except ValueError as exc:  # urllib's "unknown url type"
        raise DatasetError(f"cannot download from {url!r}: {exc}. Fix: give an http(s):// URL.") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise _network_error(spec, url, exc, home) from None


def _resume_start(response: Any, offset: int) -> int | None:
    """Byte where the body starts: 0 for a full 200 reply, ``offset`` for a matching 206."""
    if response.status == 200:
        return 0 if offset == 0 else None
    if response.status == 206:
        match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
        if match and int(match.group(1)) == offset:
            return offset
    return None


def _total_size(response: Any, start: int) -> int | None:
    """The whole file's size as the server states it, or None when it does not say."""
    if response.status == 206:
        return _content_range_total(response.headers.get("Content-Range"))
    length = response.headers.get("Content-Length")
    return start + int(length) if length and length.isdigit() else None


def _content_range_total(value: str | None) -> int | None:
    match = re.search(r"/(\d+)\s*$", value or "")
    return int(match.group(1)) if match else None


def _stream(
    response: IO[bytes],
    part: Path,
    spec: DatasetSpec,
    url: str,
    *,
    start: int,
    total: int | None,
    progress: bool,
) -> None:
    """Append the body to ``part`` (truncating it first when ``start`` is 0)."""
    done = start
    bar = _progress_bar(spec.name, total, done, enabled=progress)
    with bar as advance, open(part, "r+b" if start else "wb") as out:
        out.seek(start)
        out.truncate()
        while True:
            chunk = _read_chunk(response, spec, url, part, done, total)
            if not chunk:
                break
            done += len(chunk)
            if spec.size is not None and done > spec.size:
                out.close()
                part.unlink(missing_ok=True)
                raise DatasetError(
                    f"{url} sent more than the {spec.size:,} bytes of {spec.archive_name}: not the "
                    f"published file. Fix: check the URL; the official one is {spec.url}."
                )
            out.write(chunk)
            advance(len(chunk))
    if total is not None and done < total:
        raise _interrupted(spec, url, part, done, total, "the server closed the connection early")


def _read_chunk(response: IO[bytes], spec: DatasetSpec, url: str, part: Path, done: int, total: int | None) -> bytes:
    try:
        return response.read(CHUNK)
    except http.client.IncompleteRead as exc:
        raise _interrupted(spec, url, part, done + len(exc.partial), total, "the connection dropped") from None
    except TimeoutError as exc:
        raise _interrupted(spec, url, part, done, total, f"no data for a while ({exc or 'timed out'})") from None
    except (OSError, http.client.HTTPException) as exc:
        raise _interrupted(spec, url, part, done, total, str(exc) or type(exc).__name__) from None


def _interrupted(spec: DatasetSpec, url: str, part: Path, done: int, total: int | None, why: str) -> DatasetError:
    of = f" of {total:,}" if total else ""
    return DatasetError(
        f"downloading {spec.name} from {url} stopped after {done:,}{of} bytes: {why}. The partial "
        f"file is kept at {part}. Fix: run `aerec datasets download {spec.name}` again to resume."
    )


def _network_error(spec: DatasetSpec, url: str, exc: BaseException, home: Path) -> DatasetError:
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, TimeoutError):  # socket.timeout is TimeoutError since 3.10
        why = "the connection timed out"
    else:
        why = str(reason) or type(reason).__name__
    return DatasetError(
        f"cannot download {spec.name} from {url}: {why}. Fix: check the network connection (and "
        f"HTTPS_PROXY if you use a proxy) and try again; or set {MIRROR_ENV} to a mirror serving "
        f"{spec.archive_name}; or fetch {spec.url} by hand and unpack it into {home} (so that "
        f"{home / str(spec.folder) / str(spec.ratings_file)} exists)."
    )


class _NoBar:
    def __call__(self, n: int) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _LoggedBar:
    """Download progress as log records on ``aerec.data.download`` (the CLI draws them as a bar).

    Calling it advances it by ``n`` bytes. Records carry ``progress`` (``event``: ``"start"``,
    ``"advance"`` or ``"end"``; ``kind = "download"``; ``name``, ``total``, ``completed``) and
    come at most every :attr:`EVERY` seconds, so that logging them as lines stays readable.
    """

    EVERY = 0.2  # seconds between two "advance" records

    def __init__(self, name: str, total: int | None, done: int) -> None:
        self.name, self.total, self.completed = name, total, done
        self._last = 0.0

    def _report(self, event: str) -> None:
        size = f"{self.completed / 1e6:.1f}" + (f"/{self.total / 1e6:.1f}" if self.total else "")
        _log.info(f"{self.name}: {size} MB", extra={"progress": {
            "event": event, "kind": "download", "name": self.name, "total": self.total, "completed": self.completed}})

    def __call__(self, n: int) -> None:
        self.completed += n
        now = time.monotonic()
        if now - self._last >= self.EVERY:
            self._last = now
            self._report("advance")

    def __enter__(self) -> _LoggedBar:
        self._report("start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._report("end")


def _progress_bar(name: str, total: int | None, done: int, *, enabled: bool) -> _NoBar | _LoggedBar:
    return _LoggedBar(name, total, done) if enabled else _NoBar()


# ----------------------------------------------------------------------------- verifying
def _verify(part: Path, spec: DatasetSpec, url: str) -> None:
    """Check the finished file's size and every pinned checksum; delete it when wrong."""
    size = part.stat().st_size
    if spec.size is not None and size != spec.size:
        part.unlink()
        raise DatasetError(
            f"{spec.archive_name} from {url} is {size:,} bytes, expected {spec.size:,}: the download "
            f"is truncated or not the published archive. The bad file was deleted. Fix: run `aerec "
            f"datasets download {spec.name}` again."
        )
    if not spec.has_checksum:
        warnings.warn(
            f"no pinned checksum exists for {spec.name}: only its size and zip integrity were checked",
            UserWarning,
            stacklevel=3,
        )
        return
    digests = _digests(part, md5=spec.md5 is not None, sha256=spec.sha256 is not None)
    for algorithm, expected in (("sha256", spec.sha256), ("md5", spec.md5)):
        if expected is not None and digests[algorithm] != expected.lower():
            part.unlink()
            raise DatasetError(
                f"{spec.archive_name} from {url} has {algorithm} {digests[algorithm]}, expected "
                f"{expected}: the file is corrupt or not the published archive. The bad file was "
                f"deleted. Fix: run `aerec datasets download {spec.name}` again; if it fails again, "
                f"the source serves different bytes (use the official {spec.url}), or GroupLens "
                "has republished the archive and aerec's pinned checksum needs updating."
            )


def _digests(path: Path, *, md5: bool, sha256: bool) -> dict[str, str]:
    """SHA-256 and/or MD5 of a file, in one pass."""
    hashers: dict[str, Any] = {}
    if sha256:
        hashers["sha256"] = hashlib.sha256()
    if md5:
        hashers["md5"] = hashlib.new("md5", usedforsecurity=False)  # a published identity, not security
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            for h in hashers.values():
                h.update(block)
    return {name: h.hexdigest() for name, h in hashers.items()}


# ----------------------------------------------------------------------------- extracting
def _unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    """Why a zip member must not be extracted, or None when it is fine."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "a '..' path that escapes the folder"
    if (info.external_attr >> 16) & 0o170000 == 0o120000:
        return "a symbolic link"
    return None


def _bad_zip(part: Path, spec: DatasetSpec, url: str, why: str) -> DatasetError:
    part.unlink(missing_ok=True)
    return DatasetError(
        f"{spec.archive_name} from {url} is not a usable zip archive: {why}. The file was deleted. "
        f"Fix: run `aerec datasets download {spec.name}` again (add --force to start over)."
    )


def _extract(part: Path, spec: DatasetSpec, home: Path, final: Path, url: str) -> None:
    """Unpack ``part`` into a temporary folder in ``home``, then move ``spec.folder`` to ``final``."""
    assert spec.folder is not None and spec.ratings_file is not None
    try:
        archive = zipfile.ZipFile(part)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise _bad_zip(part, spec, url, str(exc) or "unreadable") from None
    with archive:
        members = archive.infolist()
        for info in members:
            why = _unsafe_reason(info)
            if why is not None:
                raise _bad_zip(part, spec, url, f"member {info.filename!r} is {why}")
        inflated = sum(i.file_size for i in members)
        if inflated > MAX_INFLATION * part.stat().st_size + CHUNK:
            raise _bad_zip(part, spec, url, f"it claims to unpack to {inflated:,} bytes (a zip bomb?)")
        names = {i.filename.replace("\\", "/") for i in members}
        wanted = f"{spec.folder}/{spec.ratings_file}"
        if wanted not in names:
            raise _bad_zip(part, spec, url, f"it has no {wanted}")

        tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", suffix=".extracting", dir=home))
        try:
            for info in members:
                _extract_member(archive, info, tmp)
            _write_marker(tmp / spec.folder, spec, url)
            _swap_in(tmp / spec.folder, final)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise _bad_zip(part, spec, url, str(exc) or "a member is corrupt") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _extract_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, root: Path) -> None:
    target = root.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
    if info.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    # ZipExtFile checks each member's CRC as it reads, raising BadZipFile on corruption.
    with archive.open(info) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, CHUNK)


def _write_marker(folder: Path, spec: DatasetSpec, url: str) -> None:
    """Record where the folder came from (read by nothing critical; for people and audits)."""
    record = {
        "name": spec.name,
        "url": url,
        "size": spec.size,
        "sha256": spec.sha256,
        "md5": spec.md5,
        "downloaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "license": spec.license,
    }
    (folder / MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _swap_in(new: Path, final: Path) -> None:
    """Replace ``final`` by ``new`` with renames only, so ``final`` is never half-written."""
    old: Path | None = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(final, old)
    try:
        os.replace(new, final)
    except OSError:
        if old is not None:
            os.replace(old, final)  # put the previous copy back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
