"""Coverage-guided fuzzing of every rating-file reader with atheris (libFuzzer for Python).

Each input is ``[format byte][options byte][file bytes]``: the first byte picks the format
(auto, ml-100k, ml-1m, ml-latest, netflix, csv, tsv, parquet, or a metadata file next to a
valid ratings file), the second the reader options, the rest is the file. libFuzzer mutates
the bytes and keeps the inputs that reach new lines of aerec's code. Any exception other than
DataError is a crash: libFuzzer stops and writes the input to ``crash-<sha1>``.

Usage (from the repository root; ``pip install atheris``)::

    mkdir -p /tmp/corpus-readers
    python fuzz/fuzz_readers.py /tmp/corpus-readers -runs=10000 -max_len=4096
    python fuzz/fuzz_readers.py crash-<sha1>        # replay one input

An empty corpus folder is first filled with one valid file of each format (``seed_files``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports(include=["aerec", "fuzz"]):
    import aerec.recommender  # noqa: F401 - imported here so that its code is instrumented too
    import aerec.training  # noqa: F401
    from fuzz import targets as T

FORMATS = T.READER_FORMATS + ("metadata",)
METADATA = sorted(T.METADATA_NAMES)
COLUMNS = [None, "user,item,rating", "user,item,rating,timestamp", "user,item", "item,user,rating,_", "user,_,item"]
SEPS = [None, ",", "\t", ";", "|", "::", "whitespace"]
ENCODINGS = [None, "latin-1", "utf-16", "cp1252"]
DUPLICATES = ["error", "last", "mean"]
SCALES = T.scale_options()

WORK = T.Workdir()


def options(bits: int) -> dict:
    """Reader options from one byte: bits 0-1 scale/columns, 2-3 sep, 4 implicit, 5-6 duplicates, 7 encoding."""
    out: dict = {}
    if bits & 0b11:
        out["columns"] = COLUMNS[(bits & 0b11) + (bits >> 6 & 0b10)]
    if bits >> 2 & 0b11:
        out["sep"] = SEPS[(bits >> 2 & 0b11) + (bits >> 5 & 0b11)]
    if bits >> 4 & 1:
        out["implicit"] = bool(bits >> 5 & 1)
    out["duplicates"] = DUPLICATES[(bits >> 5 & 0b11) % 3]
    if bits >> 7:
        out["encoding"] = ENCODINGS[bits % len(ENCODINGS)]
        out["scale"] = SCALES[bits % len(SCALES)]
    return {k: v for k, v in out.items() if v is not None}


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    fmt = FORMATS[data[0] % len(FORMATS)]
    body = data[2:]
    if fmt == "metadata":
        T.metadata_case(WORK, METADATA[data[1] % len(METADATA)], body)
        return
    T.read_case(WORK, fmt, body, options(data[1]) if data[1] >= 16 else {})


def write_seeds(folder: Path) -> None:
    """One valid input per format (options byte 0: no options), so mutation starts from files
    that parse."""
    for fmt, files in T.seed_files().items():
        for k, content in enumerate(files):
            (folder / f"seed-{fmt}-{k}").write_bytes(bytes([FORMATS.index(fmt), 0]) + content)
    for k, name in enumerate(METADATA):
        sample = {"u.item": b"1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n",
                  "movies.dat": b"1::Toy Story (1995)::Animation|Children's|Comedy\n",
                  "movies.csv": b"movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n"}.get(
                      name, b"1,2003,Dinosaur Planet\n2,2004,Isle of Man TT 2004 Review\n")
        (folder / f"seed-metadata-{k}").write_bytes(bytes([FORMATS.index("metadata"), k]) + sample)


def main() -> None:
    folders = [Path(a) for a in sys.argv[1:] if not a.startswith("-") and Path(a).is_dir()]
    for folder in folders:
        if not any(folder.iterdir()):
            write_seeds(folder)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
