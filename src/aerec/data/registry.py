"""The dataset registry: which datasets aerec knows, where they live, and how to load them.

Two kinds of dataset share one registry:

* ``download``: the MovieLens archives from GroupLens. Each entry pins the archive's URL, size and
  checksum(s), the folder the zip unpacks to, the ratings file and its format, the rating scale
  and the licence terms. :func:`aerec.data.download.download` fetches one into the data home;
  :func:`load_dataset` only ever reads a local copy and never touches the network.
* ``builtin``: ``toy`` (the 11 x 6 like/dislike example of docs/architecture.md) and ``synthetic`` (ratings
  drawn from a known low-rank model), generated in memory.

The data home is ``$AEREC_DATA_HOME`` or, when unset, the user cache folder
(``platformdirs.user_cache_dir("aerec")``); a dataset ``NAME`` lives in ``<data home>/<folder>``.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from aerec.data.ratings import Ratings
from aerec.data.scale import RatingScale
from aerec.errors import ConfigError, DatasetError

__all__ = [
    "DATA_HOME_ENV",
    "REGISTRY",
    "DatasetSpec",
    "data_home",
    "dataset_dir",
    "get_spec",
    "is_downloaded",
    "list_datasets",
    "load_dataset",
]

DATA_HOME_ENV = "AEREC_DATA_HOME"

DatasetKind = Literal["download", "builtin"]

# GroupLens' terms, shared by every MovieLens archive (quoted in each archive's README).
GROUPLENS_LICENSE = (
    "GroupLens terms: research use only; no redistribution without permission; no commercial use "
    "without permission; cite F. M. Harper and J. A. Konstan (2015), The MovieLens Datasets: "
    "History and Context, ACM TiiS 5(4):19, doi:10.1145/2827872"
)
GROUPLENS_LICENSE_SHORT = "research only, no redistribution; cite Harper & Konstan 2015"

_HALF_STARS = RatingScale(0.5, 5.0, 0.5)
_FIVE_STARS = RatingScale(1.0, 5.0, 1.0)
_BASE_URL = "https://files.grouplens.org/datasets/movielens"


@dataclass(frozen=True)
class DatasetSpec:
    """Everything aerec knows about one dataset before it has read a byte of it.

    Attributes:
        name: the registry key, e.g. ``"ml-100k"``.
        kind: ``"download"`` (an archive fetched once into the data home) or ``"builtin"``.
        title: a human name for listings.
        url: where the archive is published (``None`` for built-in data).
        size: the archive's size in bytes, checked after download.
        sha256 / md5: the archive's pinned checksums (lower-case hex). Download checks every one
            that is set; when both are ``None`` it checks only the size and the zip's integrity
            and warns that nothing pins the content.
        folder: the top-level folder inside the zip, which becomes ``<data home>/<folder>``.
        ratings_file: the ratings file inside ``folder``.
        items_file: the item metadata file inside ``folder`` (titles, genres), if any.
        format: the reader's format name for ``ratings_file`` (see ``aerec.data.readers``).
        scale: the rating scale the data is published on.
        license: the terms of use, in full.
        license_short: the same in a few words, for tables.
        users / items / ratings: published (approximate) counts; ``items`` counts rated items
            (ml-32m: the catalogue size, the only figure published).
    """

    name: str
    kind: DatasetKind
    title: str
    scale: RatingScale
    license: str
    license_short: str
    users: int | None = None
    items: int | None = None
    ratings: int | None = None
    url: str | None = None
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    folder: str | None = None
    ratings_file: str | None = None
    items_file: str | None = None
    format: str | None = None

    @property
    def archive_name(self) -> str:
        """The archive's file name as published, e.g. ``ml-10m.zip``."""
        if self.url is None:
            raise DatasetError(f"{self.name} is built in and has no archive")
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def has_checksum(self) -> bool:
        return bool(self.sha256 or self.md5)


# The file layouts of the MovieLens archives, by the reader format that reads them:
# (ratings file, items file).
_LAYOUTS = {
    "ml-100k": ("u.data", "u.item"),
    "ml-1m": ("ratings.dat", "movies.dat"),
    "ml-latest": ("ratings.csv", "movies.csv"),
}

# The MovieLens archives, as published: title, reader format, rating scale, and the counts of
# users, items and ratings. ML-10M has ML-1M's user::item::rating::timestamp layout; its
# archive unpacks to ml-10M100K/, not ml-10m/. ML-32M's items count the catalogue (README):
# slightly fewer movies have ratings.
_MOVIELENS = [
    ("ml-100k", "MovieLens 100K (1998)", "ml-100k", _FIVE_STARS, 943, 1_682, 100_000),
    ("ml-1m", "MovieLens 1M (2003)", "ml-1m", _FIVE_STARS, 6_040, 3_706, 1_000_209),
    ("ml-10m", "MovieLens 10M (2009)", "ml-1m", _HALF_STARS, 69_878, 10_677, 10_000_054),
    ("ml-20m", "MovieLens 20M (2015)", "ml-latest", _HALF_STARS, 138_493, 26_744, 20_000_263),
    ("ml-25m", "MovieLens 25M (2019)", "ml-latest", _HALF_STARS, 162_541, 59_047, 25_000_095),
    ("ml-32m", "MovieLens 32M (2023)", "ml-latest", _HALF_STARS, 200_948, 87_585, 32_000_204),
    ("ml-latest-small", "MovieLens latest small (2018-09)", "ml-latest", _HALF_STARS, 610, 9_724, 100_836),
]
_FOLDERS = {"ml-10m": "ml-10M100K"}  # the top-level folder inside the zip, where it is not the name

# Each archive's pinned (size in bytes, sha256, md5). Where each value comes from (never
# guessed; a value found nowhere stays None):
#   size + sha256 for ml-100k, ml-1m, ml-20m, ml-25m, ml-latest-small: tensorflow/datasets
#     tensorflow_datasets/url_checksums/movielens.txt (commit 1c076ac3), which lists
#     "url <size> <sha256>"; the same sha256 values are pinned by ISG-Siegen/OmniRec
#     (src/omnirec/data_loaders/movielens_*.py) and others.
#   ml-10m sha256 + size 65,566,137: ISG-Siegen/OmniRec (movielens_small.py) and several research
#     manifests that downloaded it from GroupLens.
#   ml-32m sha256 + size 238,950,008: pinned by several public projects that downloaded it
#     (e.g. a Rust MovieLens fetcher and research data manifests); md5 as below.
#   md5 values: GroupLens publishes <archive>.zip.md5 next to each archive; the values here are
#     those copied into public code (e.g. eli-osherovich/papers_with_code
#     datasets/movielens/dl_config.py for 100k/1m/10m/20m/25m; pooch known_hash for 32m); none
#     was found for ml-latest-small.
#   ml-100k md5: every public copy reads ...0107933c0723 (not ...c0494, which appears nowhere).
# ml-latest-small is a "latest" snapshot that GroupLens may refresh (the pinned one is the
# 2018-09 release); a checksum mismatch there most likely means a new release.
_PINNED = {
    "ml-100k": (4_924_029, "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229", "0e33842e24a9c977be4e0107933c0723"),
    "ml-1m": (5_917_549, "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20", "c4d9eecfca2ab87c1945afe126590906"),
    "ml-10m": (65_566_137, "813c411ccb6122564edfe752e7f80c4dcc5aa25fa94c93622f6877a7ba252862", "ce571fd55effeba0271552578f2648bd"),
    "ml-20m": (198_702_078, "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3", "cd245b17a1ae2cc31bb14903e1204af3"),
    "ml-25m": (261_978_986, "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa", "6b51fb2759a8657d3bfcbfc42b592ada"),
    "ml-32m": (238_950_008, "e4a68655d7386b8f95f2f2424b2ff975dfdd15ffd59e0d864a14dca43e99d6ee", "d472be332d4daa821edc399621853b57"),
    "ml-latest-small": (978_202, "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436", None),
}


def _movielens(name: str, title: str, format: str, scale: RatingScale, users: int, items: int,
               ratings: int) -> DatasetSpec:
    """One GroupLens archive's entry: its files, checksums and terms filled in from the tables above."""
    size, sha256, md5 = _PINNED[name]
    ratings_file, items_file = _LAYOUTS[format]
    return DatasetSpec(
        name=name, kind="download", title=title, scale=scale,
        license=GROUPLENS_LICENSE, license_short=GROUPLENS_LICENSE_SHORT,
        users=users, items=items, ratings=ratings,
        url=f"{_BASE_URL}/{name}.zip", size=size, sha256=sha256, md5=md5,
        folder=_FOLDERS.get(name, name), ratings_file=ratings_file, items_file=items_file, format=format,
    )


_BUILTIN = [
    DatasetSpec(
        name="toy",
        kind="builtin",
        title="Toy like/dislike matrix (11 users x 6 movies, the course's example)",
        scale=RatingScale(0.0, 1.0, 1.0),
        license="part of aerec (Apache-2.0)",
        license_short="built in",
        users=11,
        items=6,
        ratings=57,
    ),
    DatasetSpec(
        name="synthetic",
        kind="builtin",
        title="Synthetic low-rank ratings with a known noise floor (options: n_ratings, seed, taste)",
        scale=_FIVE_STARS,
        license="generated by aerec (Apache-2.0)",
        license_short="built in",
        ratings=100_000,
    ),
]

REGISTRY: dict[str, DatasetSpec] = {
    spec.name: spec for spec in [*(_movielens(*row) for row in _MOVIELENS), *_BUILTIN]
}
"""Every dataset by name: the MovieLens archives in publication order, then the built-in ones."""

# load_dataset options understood by the built-in datasets (everything else is an error).
_BUILTIN_OPTIONS = {
    "toy": frozenset(),
    "synthetic": frozenset({"n_ratings", "seed", "n_users", "n_items", "rank", "noise", "scale", "taste"}),
}


def data_home(override: str | os.PathLike[str] | None = None) -> Path:
    """The folder datasets are downloaded to and read from.

    ``override`` when given, else ``$AEREC_DATA_HOME``, else the user cache folder
    (``platformdirs.user_cache_dir("aerec")``, e.g. ``~/.cache/aerec`` on Linux). The folder is
    not created here; :func:`aerec.data.download.download` creates it when it needs to.
    """
    if override is not None and str(override) != "":
        return Path(override).expanduser()
    env = os.environ.get(DATA_HOME_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("aerec"))


_home = data_home  # for functions whose ``data_home`` parameter shadows the function


def list_datasets() -> list[DatasetSpec]:
    """Every registered dataset, downloads first, in registry order."""
    return sorted(REGISTRY.values(), key=lambda s: s.kind != "download")


def get_spec(name: str, *, download: bool = False) -> DatasetSpec:
    """The registry entry for ``name``; a :class:`DatasetError` listing the known names if none
    (with ``download``, for ``aerec datasets download``, which takes names only)."""
    spec = REGISTRY.get(name)
    if spec is None:
        spec = REGISTRY.get(str(name).strip().lower())
    if spec is None:
        raise _unknown(name, download=download)
    return spec


def _unknown(name: str, *, download: bool = False) -> DatasetError:
    close = difflib.get_close_matches(str(name).lower(), list(REGISTRY), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    if download:
        return DatasetError(f"unknown dataset {name!r}.{hint} Known datasets: {', '.join(REGISTRY)}. "
                            "Fix: give one of these names.")
    return DatasetError(
        f"unknown dataset {name!r} and no such file.{hint} Known datasets: {', '.join(REGISTRY)}. "
        "Fix: give one of these names, or the path of a ratings file."
    )


def dataset_dir(name: str, data_home: str | os.PathLike[str] | None = None) -> Path:
    """Where the registered dataset ``name`` lives (or would live): ``<data home>/<folder>``."""
    spec = get_spec(name)
    if spec.kind != "download":
        raise DatasetError(f"{spec.name} is built in: it has no folder on disk")
    assert spec.folder is not None  # every download entry names its folder
    return _home(data_home) / spec.folder


def is_downloaded(name: str, data_home: str | os.PathLike[str] | None = None) -> bool:
    """True when the dataset's ratings file is present locally (always True for built-ins)."""
    spec = get_spec(name)
    if spec.kind != "download":
        return True
    assert spec.ratings_file is not None
    return (dataset_dir(name, data_home) / spec.ratings_file).is_file()


def load_dataset(
    name_or_path: str | os.PathLike[str],
    *,
    data_home: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Ratings:
    """Load a registered dataset by name, or a ratings file (or dataset folder) by path.

    * A downloadable name (``ml-100k``, ...) reads ``<data home>/<folder>/<ratings file>`` with
      :func:`aerec.data.readers.read_ratings`, attaching the item metadata file when present. It
      never uses the network: when the folder is absent it raises a :class:`DatasetError` that
      says to run ``aerec datasets download NAME`` or to set ``AEREC_DATA_HOME``.
    * ``toy`` and ``synthetic`` are generated in memory (``synthetic`` takes ``n_ratings``,
      ``seed`` and the other arguments of :func:`aerec.data.synthetic.synthetic_ratings`).
    * An existing path (a ``Path``, or a string that is not a registered name) is read with
      ``read_ratings``; a folder is searched for ``u.data``, ``ratings.dat`` or ``ratings.csv``.
    * Anything else is a :class:`DatasetError` that lists the known names and close matches.

    ``options`` go to ``read_ratings`` (``format``, ``columns``, ``sep``, ``scale``,
    ``duplicates``, ``implicit``, ``encoding``) for files and downloaded datasets.
    """
    key = os.fspath(name_or_path)
    # A registered name always means the registry's dataset, even if a file of that name sits in
    # the working folder (write ./ml-100k to mean the folder).
    spec = None if isinstance(name_or_path, os.PathLike) else REGISTRY.get(key.strip().lower())
    if spec is not None:
        if spec.kind == "builtin":
            return _load_builtin(spec, options)
        return _load_downloaded(spec, data_home, options)
    path = Path(key).expanduser()
    if path.exists():
        return _load_path(path, options)
    if os.sep in key or "/" in key or path.suffix:
        raise DatasetError(
            f"{key}: no such file or folder. Fix: check the path, or give a dataset name "
            f"({', '.join(REGISTRY)})."
        )
    raise _unknown(key)


def _load_builtin(spec: DatasetSpec, options: dict[str, Any]) -> Ratings:
    allowed = _BUILTIN_OPTIONS.get(spec.name, frozenset())
    given = {k: v for k, v in options.items() if v is not None}
    extra = sorted(set(given) - allowed)
    if extra:
        takes = ", ".join(sorted(allowed)) or "no options"
        raise ConfigError(f"the built-in dataset {spec.name} does not take {', '.join(extra)}; it takes {takes}")
    from aerec.data import synthetic

    if spec.name == "toy":
        ratings = synthetic.toy_ratings()
    else:
        ratings = synthetic.synthetic_ratings(**given)
    return ratings if ratings.source != "<memory>" else replace(ratings, source=spec.name)


def _load_downloaded(spec: DatasetSpec, home: str | os.PathLike[str] | None, options: dict[str, Any]) -> Ratings:
    folder = dataset_dir(spec.name, home)
    assert spec.ratings_file is not None
    ratings_path = folder / spec.ratings_file
    if not ratings_path.is_file():
        where = "is missing" if not folder.exists() else f"has no {spec.ratings_file}"
        raise DatasetError(
            f"{spec.name} is not downloaded: {folder} {where}. Fix: run `aerec datasets download "
            f"{spec.name}` (about {_mib(spec.size)}), or set {DATA_HOME_ENV} to a folder that holds "
            f"{spec.folder}/{spec.ratings_file}."
        )
    opts = {"format": spec.format, **{k: v for k, v in options.items() if v is not None}}
    return _read(ratings_path, opts)


def _load_path(path: Path, options: dict[str, Any]) -> Ratings:
    # read_ratings reads a file, or a folder through its u.data / ratings.dat / ratings.csv, and
    # attaches the item metadata (u.item, movies.dat, movies.csv) found next to it.
    return _read(path, {k: v for k, v in options.items() if v is not None})


def _read(path: Path, options: dict[str, Any]) -> Ratings:
    # read_ratings attaches the item metadata (u.item, movies.dat, movies.csv) found next to the
    # ratings file, and only warns when that file is unreadable.
    import inspect

    from aerec.data import readers

    takes = [p for p in inspect.signature(readers.read_ratings).parameters if p != "path"]
    extra = sorted(set(options) - set(takes))
    if extra:
        raise ConfigError(f"reading {path} does not take {', '.join(extra)}; file options are {', '.join(takes)}")
    return readers.read_ratings(path, **options)


def _mib(size: int | None) -> str:
    if not size:
        return "an unknown size"
    return f"{size / 2**20:,.0f} MiB" if size >= 2**20 else f"{size / 2**10:,.0f} KiB"
