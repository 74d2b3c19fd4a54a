"""Downloads against a local HTTP server on 127.0.0.1: resume, verify, extract, fail cleanly.

The server serves zips built in ``tmp_path``; it logs every request (with its Range header) so a
test can assert that a call made no request, or that it resumed. The registry entry for ml-100k is
monkeypatched to point at it, with the test archive's own size and checksums.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import re
import socket
import threading
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from aerec.data import registry
from aerec.data.download import MARKER, MIRROR_ENV, download
from aerec.errors import DatasetError

U_DATA = b"".join(f"{u}\t{i}\t{(u * i) % 5 + 1}\t88125{u:04d}\n".encode() for u in range(1, 30) for i in range(1, 8))


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


U_ITEM = b"".join(b"%d|Film %d (1995)|01-Jan-1995||http://example.org|" % (i, i) + b"|".join([b"0"] * 19) + b"\n"
                 for i in range(1, 8))
GOOD = make_zip({"ml-100k/u.data": U_DATA, "ml-100k/u.item": U_ITEM, "ml-100k/README": b"hi\n"})


class Server:
    """A tiny HTTP server with optional Range support, modes for misbehaviour, and a request log."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.honour_range = True
        self.drop_after: int | None = None  # close the connection after this many body bytes
        self.stall: float = 0.0  # seconds to wait before answering
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                rng = self.headers.get("Range")
                outer.requests.append((self.path, rng))
                if outer.stall:
                    time.sleep(outer.stall)
                data = outer.files.get(self.path)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if outer.honour_range and match:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/zip")
                self.end_headers()
                try:
                    if outer.drop_after is not None:
                        self.wfile.write(body[: outer.drop_after])
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def pin(monkeypatch, server: Server, data: bytes, *, path: str = "/ml-100k.zip", sha256: bool = True,
        md5: bool = False, size: int | None = -1, **fields) -> str:
    """Serve ``data`` at ``path`` and point the ml-100k entry at it with ``data``'s own checksums."""
    server.files[path] = data
    spec = replace(
        registry.REGISTRY["ml-100k"],
        url=server.url(path),
        size=len(data) if size == -1 else size,
        sha256=hashlib.sha256(data).hexdigest() if sha256 else None,
        md5=hashlib.md5(data).hexdigest() if md5 else None,
        **fields,
    )
    monkeypatch.setitem(registry.REGISTRY, "ml-100k", spec)
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    return spec.url


def leftovers(home: Path) -> list[str]:
    """Names in the data home other than the dataset folder: temp folders, .part files."""
    return sorted(p.name for p in home.iterdir() if p.name != "ml-100k") if home.exists() else []


# ----------------------------------------------------------------------------- success paths
def test_downloads_verifies_and_extracts(monkeypatch, server, home):
    pin(monkeypatch, server, GOOD)
    folder = download("ml-100k", data_home=home, progress=False)
    assert folder == home / "ml-100k"
    assert (folder / "u.data").read_bytes() == U_DATA
    assert (folder / "u.item").is_file() and (folder / MARKER).is_file()
    assert leftovers(home) == []  # no .part, no temp folder
    assert len(server.requests) == 1 and server.requests[0][1] is None
    assert registry.is_downloaded("ml-100k", home)
    ratings = registry.load_dataset("ml-100k", data_home=home)  # and it reads back
    assert (len(ratings), ratings.n_users, ratings.n_items) == (29 * 7, 29, 7)
    assert ratings.item_info is not None and ratings.item_info.loc[3, "title"] == "Film 3 (1995)"


def test_second_call_uses_local_copy_without_network(monkeypatch, server, home):
    pin(monkeypatch, server, GOOD)
    download("ml-100k", data_home=home, progress=False)
    server.stop()  # any request now would fail
    n = len(server.requests)
    assert download("ml-100k", data_home=home, progress=False) == home / "ml-100k"
    assert len(server.requests) == n


def test_progress_bar_path_and_md5_only_checksum(monkeypatch, server, home):
    pin(monkeypatch, server, GOOD, sha256=False, md5=True)
    folder = download("ml-100k", data_home=home, progress=True)
    assert (folder / "u.data").read_bytes() == U_DATA


def test_data_home_from_environment(monkeypatch, server, home):
    pin(monkeypatch, server, GOOD)
    monkeypatch.setenv("AEREC_DATA_HOME", str(home))
    assert download("ml-100k", progress=False) == home / "ml-100k"
    assert registry.data_home() == home
    assert registry.data_home(home / "other") == home / "other"


def test_mirror_env_and_url_argument_override_the_registry(monkeypatch, server, home):
    pin(monkeypatch, server, GOOD, path="/nowhere.zip")
    monkeypatch.setitem(registry.REGISTRY, "ml-100k",
                        replace(registry.REGISTRY["ml-100k"], url="http://127.0.0.1:9/ml-100k.zip"))
    server.files["/mirror/ml-100k.zip"] = GOOD
    monkeypatch.setenv(MIRROR_ENV, server.url("/mirror/"))
    download("ml-100k", data_home=home, progress=False)
    assert server.requests[-1][0] == "/mirror/ml-100k.zip"
    download("ml-100k", data_home=home, progress=False, force=True, url=server.url("/nowhere.zip"))
    assert server.requests[-1][0] == "/nowhere.zip"


@pytest.mark.parametrize("form", ["path", "file-url", "mirror-folder"])
def test_an_archive_already_on_disk_is_copied_checked_and_unpacked(monkeypatch, server, home, tmp_path, form):
    pin(monkeypatch, server, GOOD)
    server.stop()  # an offline machine: nothing may go to the network
    n = len(server.requests)
    local = tmp_path / "downloads" / "ml-100k.zip"
    local.parent.mkdir()
    local.write_bytes(GOOD)
    url = {"path": str(local), "file-url": local.as_uri(), "mirror-folder": None}[form]
    if form == "mirror-folder":
        monkeypatch.setenv(MIRROR_ENV, str(local.parent))
    folder = download("ml-100k", data_home=home, progress=False, url=url)
    assert (folder / "u.data").read_bytes() == U_DATA and leftovers(home) == [] and len(server.requests) == n
    assert local.read_bytes() == GOOD  # the user's copy is left as it was


def test_a_local_archive_that_is_missing_or_not_the_file_is_refused(monkeypatch, server, home, tmp_path):
    pin(monkeypatch, server, GOOD)
    with pytest.raises(DatasetError, match="no file at .*nowhere.zip.*http"):
        download("ml-100k", data_home=home, progress=False, url=str(tmp_path / "nowhere.zip"))
    other = tmp_path / "other.zip"
    other.write_bytes(GOOD[:-1] + b"x")
    with pytest.raises(DatasetError, match="sha256|bytes"):
        download("ml-100k", data_home=home, progress=False, url=str(other))
    assert not (home / "ml-100k").exists() and leftovers(home) == [] and other.exists()
    with pytest.raises(DatasetError, match="cannot download from 'gopher2://x'"):
        download("ml-100k", data_home=home, progress=False, url="gopher2://x")


def test_force_replaces_an_existing_copy_atomically(monkeypatch, server, home):
    pin(monkeypatch, server, GOOD)
    folder = download("ml-100k", data_home=home, progress=False)
    (folder / "stale.txt").write_text("from an older copy")
    download("ml-100k", data_home=home, progress=False, force=True)
    assert not (folder / "stale.txt").exists()
    assert (folder / "u.data").read_bytes() == U_DATA
    assert leftovers(home) == []


# ----------------------------------------------------------------------------- resuming
def test_truncated_part_resumes_with_a_range_request(monkeypatch, server, home):
    pin(monkeypatch, server, GOOD)
    home.mkdir()
    cut = len(GOOD) // 3
    (home / "ml-100k.zip.part").write_bytes(GOOD[:cut])
    folder = download("ml-100k", data_home=home, progress=False)
    assert server.requests == [("/ml-100k.zip", f"bytes={cut}-")]
    assert (folder / "u.data").read_bytes() == U_DATA
    assert not (home / "ml-100k.zip.part").exists()


def test_server_that_ignores_range_makes_us_start_over(monkeypatch, server, home):
    pin(monkeypatch, server, GOOD)
    server.honour_range = False
    home.mkdir()
    (home / "ml-100k.zip.part").write_bytes(GOOD[:100])
    folder = download("ml-100k", data_home=home, progress=False)
    assert server.requests[0][1] == "bytes=100-"  # we asked to resume ...
    assert (folder / "u.data").read_bytes() == U_DATA  # ... and the 200 reply was not appended


def test_complete_part_is_used_without_download(monkeypatch, server, home):
    pin(monkeypatch, server, GOOD)
    home.mkdir()
    (home / "ml-100k.zip.part").write_bytes(GOOD)
    download("ml-100k", data_home=home, progress=False)
    assert server.requests == []


def test_complete_part_with_unknown_size_gets_416_and_is_used(monkeypatch, server, home):
    pin(monkeypatch, server, GOOD, size=None)
    home.mkdir()
    (home / "ml-100k.zip.part").write_bytes(GOOD)
    folder = download("ml-100k", data_home=home, progress=False)
    assert server.requests == [("/ml-100k.zip", f"bytes={len(GOOD)}-")]
    assert (folder / "u.data").read_bytes() == U_DATA


def test_dropped_connection_keeps_part_and_next_call_resumes(monkeypatch, server, home):
    pin(monkeypatch, server, GOOD)
    server.drop_after = 500
    with pytest.raises(DatasetError, match=r"stopped after 500 of [\d,]+ bytes.*run .*again to resume"):
        download("ml-100k", data_home=home, progress=False)
    assert (home / "ml-100k.zip.part").stat().st_size == 500
    assert not (home / "ml-100k").exists()
    server.drop_after = None
    folder = download("ml-100k", data_home=home, progress=False)
    assert server.requests[-1][1] == "bytes=500-"
    assert (folder / "u.data").read_bytes() == U_DATA


# ----------------------------------------------------------------------------- failures
def test_wrong_checksum_fails_and_leaves_nothing_behind(monkeypatch, server, home):
    pin(monkeypatch, server, GOOD)
    spec = registry.REGISTRY["ml-100k"]
    monkeypatch.setitem(registry.REGISTRY, "ml-100k", replace(spec, sha256="0" * 64))
    with pytest.raises(DatasetError, match=r"sha256 [0-9a-f]{64}, expected 0{64}.*deleted"):
        download("ml-100k", data_home=home, progress=False)
    assert not (home / "ml-100k").exists()
    assert leftovers(home) == []


def test_wrong_md5_fails(monkeypatch, server, home):
    pin(monkeypatch, server, GOOD, sha256=False, md5=True)
    spec = registry.REGISTRY["ml-100k"]
    monkeypatch.setitem(registry.REGISTRY, "ml-100k", replace(spec, md5="f" * 32))
    with pytest.raises(DatasetError, match="md5"):
        download("ml-100k", data_home=home, progress=False)
    assert leftovers(home) == [] and not (home / "ml-100k").exists()


def test_wrong_size_is_refused_before_downloading(monkeypatch, server, home):
    pin(monkeypatch, server, GOOD, size=len(GOOD) + 10)
    with pytest.raises(DatasetError, match="not the same file"):
        download("ml-100k", data_home=home, progress=False)
    assert leftovers(home) == []


def test_no_pinned_checksum_warns_but_checks_size_and_zip(monkeypatch, server, home):
    pin(monkeypatch, server, GOOD, sha256=False, md5=False)
    with pytest.warns(UserWarning, match="no pinned checksum"):
        folder = download("ml-100k", data_home=home, progress=False)
    assert (folder / "u.data").read_bytes() == U_DATA


def test_corrupt_zip_is_rejected(monkeypatch, server, home):
    pin(monkeypatch, server, b"PK\x03\x04 this is not really a zip" * 40)
    with pytest.raises(DatasetError, match="not a usable zip"):
        download("ml-100k", data_home=home, progress=False)
    assert not (home / "ml-100k").exists() and leftovers(home) == []


def test_zip_with_a_corrupt_member_is_rejected_without_half_extraction(monkeypatch, server, home):
    data = bytearray(make_zip({"ml-100k/u.data": U_DATA * 20}))
    body = data.index(b"ml-100k/u.data") + len("ml-100k/u.data")
    data[body + 40 : body + 60] = bytes(20)  # damage the compressed stream, keep the directory
    pin(monkeypatch, server, bytes(data))
    with pytest.raises(DatasetError, match="not a usable zip"):
        download("ml-100k", data_home=home, progress=False)
    assert not (home / "ml-100k").exists() and leftovers(home) == []


@pytest.mark.parametrize("evil", ["../evil", "ml-100k/../../evil", "/tmp/evil"])
def test_zip_path_traversal_is_rejected(monkeypatch, server, home, evil):
    pin(monkeypatch, server, make_zip({"ml-100k/u.data": U_DATA, evil: b"gotcha"}))
    with pytest.raises(DatasetError, match="absolute path|'\\.\\.' path"):
        download("ml-100k", data_home=home, progress=False)
    assert not (home.parent / "evil").exists() and not (home / "ml-100k").exists()
    assert leftovers(home) == []


def test_archive_without_the_ratings_file_is_rejected(monkeypatch, server, home):
    pin(monkeypatch, server, make_zip({"other/u.data": U_DATA}))
    with pytest.raises(DatasetError, match="no ml-100k/u.data"):
        download("ml-100k", data_home=home, progress=False)


def test_http_404_names_the_url(monkeypatch, server, home):
    url = pin(monkeypatch, server, GOOD)
    server.files.clear()
    with pytest.raises(DatasetError, match=rf"{re.escape(url)} failed: HTTP 404"):
        download("ml-100k", data_home=home, progress=False)


def test_connection_refused_names_the_url_and_a_fix(monkeypatch, server, home):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ml-100k.zip"
    pin(monkeypatch, server, GOOD)
    with pytest.raises(DatasetError, match=rf"cannot download ml-100k from {re.escape(url)}.*{MIRROR_ENV}"):
        download("ml-100k", data_home=home, progress=False, url=url)


def test_timeout_is_a_dataset_error(monkeypatch, server, home):
    url = pin(monkeypatch, server, GOOD)
    server.stall = 1.0
    with pytest.raises(DatasetError, match=re.escape(url)):
        download("ml-100k", data_home=home, progress=False, timeout=0.2)


def test_builtin_and_unknown_names(home):
    with pytest.raises(DatasetError, match="built in"):
        download("toy", data_home=home)
    with pytest.raises(DatasetError, match="ml-100k") as caught:
        download("ml-100", data_home=home)
    assert "path" not in str(caught.value)  # download takes names only
    with pytest.raises(DatasetError, match="http"):
        download("ml-100k", data_home=home, url="ftp-ish:/nothing", progress=False)
