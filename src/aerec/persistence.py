"""Model directories (docs/architecture.md, "The model directory"): written atomically, read
without ever unpickling.

A directory holds ``model.safetensors`` (tensors only), ``model.json`` (format version, kind,
hyper-parameters, vocabularies, scale, data fingerprint, aerec version and the SHA-256 of the
weights file), ``metrics.json``, ``history.csv``, ``curves.png`` and ``config.toml``. Everything
is first written to a hidden sibling folder and renamed into place, so an interrupted save
leaves the previous model (or nothing), never half a model.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from aerec.errors import ModelFileError

__all__ = [
    "FORMAT_VERSION", "write_model_dir", "read_model_dir", "read_history_csv", "sha256_file", "atomic_write_text",
    "check_shapes",
]

FORMAT_VERSION = 1


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read it is to set it
    os.umask(mask)
    return mask


def public_modes(path: Path) -> None:
    """Give ``path`` (and, for a folder, what is directly in it) the modes a plain ``open`` or
    ``mkdir`` would: temp files and folders are created private (0600/0700), and a model made
    by one account must stay readable by the service account that serves it."""
    mask = _umask()
    for p in [path, *(path.iterdir() if path.is_dir() else [])]:
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a text file via a temp file in the same folder and ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        public_modes(Path(tmp))
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_model_dir(
    directory: str | Path,
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    extras: dict[str, str] | None = None,
    writers: dict[str, Callable[[Path], None]] | None = None,
) -> Path:
    """Write a model directory atomically.

    ``tensors`` go to model.safetensors, ``meta`` (plus the weights' SHA-256) to model.json,
    each ``extras`` entry (file name -> text) as is, and each ``writers`` entry (file name ->
    function writing that path, e.g. a plot) is called on the temp folder. An existing
    directory is replaced only once the new one is complete.
    """
    final = Path(directory)
    _check_replaceable(final)
    _clear_stale_temporaries(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        weights = tmp / "model.safetensors"
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(weights))
        meta = dict(meta, format_version=FORMAT_VERSION, weights_sha256=sha256_file(weights))
        (tmp / "model.json").write_text(json.dumps(meta, indent=1, allow_nan=False), encoding="utf-8")
        for name, text in (extras or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
        for name, write in (writers or {}).items():
            write(tmp / name)
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        public_modes(tmp)
        _swap_into_place(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _check_replaceable(final: Path) -> None:
    """Refuse to replace anything but an empty folder or an earlier model directory: the swap
    deletes what was there, and ``--out ~/Documents`` must not delete someone's documents."""
    if final.exists() and not final.is_dir():
        raise ModelFileError(f"{final} exists and is not a directory; choose another --out")
    if final.is_dir() and not (final / "model.json").is_file() and any(final.iterdir()):
        raise ModelFileError(
            f"{final} is a folder with other files in it, not an aerec model directory; saving there would "
            "delete them: choose a new or empty --out folder"
        )


def _swap_into_place(tmp: Path, final: Path) -> None:
    if final.exists() and not final.is_dir():
        raise ModelFileError(f"{final} exists and is not a directory; choose another --out")
    if not final.exists():
        os.replace(tmp, final)
        return
    if _exchange(tmp, final):
        # One atomic step: at every instant ``final`` is the old model or the new one, even
        # under SIGKILL (tests/test_crash_safety.py kills a save at each step).
        shutil.rmtree(tmp, ignore_errors=True)  # now holds the old model
        return
    # Elsewhere, two renames: a crash between them leaves ``final`` missing and the previous
    # model in the ``.NAME.old-*`` sibling, which read_model_dir names.
    old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
    os.rmdir(old)
    os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where the system
    or the file system cannot, so the caller falls back to two renames."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # a C library without renameat2 (glibc < 2.28, musl)
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _clear_stale_temporaries(final: Path) -> None:
    """Remove what interrupted saves of ``final`` left next to it: ``.NAME.tmp-*`` folders, and
    ``.NAME.old-*`` ones once ``final`` is whole again (before that they are its only copy)."""
    if not final.parent.is_dir():
        return
    patterns = [f".{final.name}.tmp-*"] + ([f".{final.name}.old-*"] if (final / "model.json").is_file() else [])
    for pattern in patterns:
        for stale in final.parent.glob(pattern):
            shutil.rmtree(stale, ignore_errors=True)


def read_model_dir(directory: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a model directory; any problem is a :class:`ModelFileError`."""
    d = Path(directory)
    if d.is_file():
        hint = f"give its folder, {d.parent}" if d.name in ("model.json", "model.safetensors") else (
            "give the folder that `aerec train --out` wrote")
        raise ModelFileError(f"{d} is a file, not a model directory; {hint}")
    if not d.is_dir():
        previous = sorted(d.parent.glob(f".{d.name}.old-*/model.json")) if d.parent.is_dir() else []
        if previous:  # a save without an atomic swap (see _swap_into_place) was interrupted
            raise ModelFileError(
                f"{d} does not exist: a save was interrupted; the previous model is in {previous[0].parent}: "
                f"rename that folder to {d.name}"
            )
        raise ModelFileError(f"{d} is not a model directory (it does not exist); train one with `aerec train --out {d}`")
    meta_path, weights = d / "model.json", d / "model.safetensors"
    if not meta_path.is_file():
        raise ModelFileError(f"{meta_path} is missing; {d} is not a complete aerec model directory")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelFileError(f"{meta_path} is not valid JSON ({exc}); the file is damaged: retrain or restore it") from None
    if not isinstance(meta, dict) or "format_version" not in meta:
        raise ModelFileError(f"{meta_path} has no format_version; it is not an aerec model file")
    version = meta["format_version"]
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise ModelFileError(
            f"{meta_path} is model format version {version!r}, newer than this aerec reads ({FORMAT_VERSION}); "
            "upgrade aerec (pip install -U aerec)"
        )
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"{meta_path} has format_version {version!r}, which no aerec writes; the file was altered")
    if not weights.is_file():
        raise ModelFileError(f"{weights} is missing; the model directory is incomplete: retrain or restore it")
    if sha256_file(weights) != meta.get("weights_sha256"):
        raise ModelFileError(
            f"{weights} does not match the checksum recorded in model.json: it is truncated or was modified; "
            "retrain or restore the directory"
        )
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:  # pragma: no cover - checksum catches these first
        raise ModelFileError(f"{weights} cannot be read ({exc}); retrain or restore it") from None
    for name, tensor in tensors.items():
        # Training never saves NaN or infinity (it stops first); such a file was altered, and
        # would answer NaN, which JSON cannot even carry.
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ModelFileError(f"{weights}: tensor {name!r} holds NaN or infinite values; the file was altered: "
                                 "retrain or restore it")
    return tensors, meta


def check_shapes(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], where: Path) -> None:
    """Raise ModelFileError unless ``found`` has exactly the tensors of ``expected``, shape for
    shape (``expected`` may live on the meta device: only shapes are read). ``where`` is the
    model directory, for the message."""
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    wrong = [f"{k} {tuple(found[k].shape)} instead of {tuple(v.shape)}"
             for k, v in expected.items() if k in found and found[k].shape != v.shape]
    if missing or extra or wrong:
        problems = "; ".join(filter(None, [
            f"missing {missing}" if missing else "", f"unexpected {extra}" if extra else "", ", ".join(wrong[:3])]))
        raise ModelFileError(f"{where}: model.json and model.safetensors do not fit together: the weights are not "
                             f"those of the network model.json describes ({problems}); the files were altered or "
                             "mixed up: retrain or restore the directory")


def read_history_csv(path: Path, columns: list[str]) -> pd.DataFrame | None:
    """The numeric ``columns`` of a saved history.csv, or None (with a warning) when the file
    is missing or damaged: it has no checksum and only draws curves, so it never stops a model
    loading. An ``epoch`` column must hold whole numbers; other cells may be empty (NaN)."""
    if not path.is_file():
        return None
    try:
        frame = pd.read_csv(path, encoding="utf-8")
        if list(frame.columns) != columns:
            raise ValueError(f"its columns are {list(frame.columns)}, not {columns}")
        frame = frame.apply(pd.to_numeric, errors="raise").astype(np.float64)
        if "epoch" in frame and not (np.isfinite(frame["epoch"]) & (frame["epoch"] % 1 == 0)).all():
            raise ValueError("an epoch is not a whole number")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, TypeError) as exc:
        warnings.warn(f"{path} is damaged ({exc}); the model loads without its training history", stacklevel=4)
        return None
    return frame
