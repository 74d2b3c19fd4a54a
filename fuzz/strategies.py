"""Hypothesis strategies for hostile rating files and configurations.

Used by ``tests/test_fuzz_*.py`` (a few hundred examples in CI) and by ``fuzz/run_hypothesis.py``
(10^4 and more). Inputs are built to reach deep into the readers: mostly well-formed lines
with a few hostile tokens (NaN, inf, 1e400, 20-digit ids, stray quotes, dates, odd Unicode,
BOMs, carriage returns, NUL bytes), in every separator and encoding the readers know, with
every reader option; plus raw bytes and byte-level mutations of valid files.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pyarrow as pa
from hypothesis import strategies as st

from fuzz.targets import METADATA_NAMES, scale_options, seed_files

# ----------------------------------------------------------------------------- tokens
NUMBERS = [
    "0", "1", "2", "3", "4", "5", "4.5", "0.5", "-1", "-0", "+3", "1e9", "1e30", "1e400", "-1e400",
    "3.4e38", "3.5e38", "nan", "NaN", "inf", "-inf", "Infinity", "9223372036854775807",
    "9223372036854775808", "-9223372036854775809", "18446744073709551616", "99999999999999999999999",
    "0x10", "1_000", "１２", "٣", "5.", ".5", "1e-400", "00001", "881250949", "978300760",
]
WORDS = [
    "", " ", "  ", "abc", "user", "item", "rating", "timestamp", "userId", "movieId", "uid", "score",
    "date", "time", "NULL", "None", "NaT", "true", "False", "é", "ß", "日本", "\u00a0", "\u200b",
    "\ufeff", '"', '""', '"a,b"', '"unclosed', "a\"b", "'", ":", "::", "1:", "MovieID:", "\\", "\t",
    ",", ";", "|", "#", "%s", "{}", "\x00", "\x1a", "\x7f", "\r",
]
DATES = [
    "2005-09-06", "2005-13-45", "0000-00-00", "9999-12-31", "1970-01-01T00:00:00Z",
    "2005-09-06T14:30:00+02:00", "2005-09-06 14:30", "06/09/2005", "Sep 6 2005", "2262-04-12",
    "1677-09-21", "-0001-01-01", "2005-9-6", "20050906",
]
TOKEN = st.one_of(
    st.integers(-3, 3000).map(str),
    st.sampled_from(NUMBERS),
    st.sampled_from(WORDS),
    st.sampled_from(DATES),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=6),
)
SEPARATORS = [",", "\t", ";", "|", " ", "  ", "::", ":", " \t"]
NEWLINES = ["\n", "\r\n", "\r"]
ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "utf-16", "utf-16-le", "utf-32", "cp1252"]


@st.composite
def delimited_text(draw) -> bytes:
    """Lines of 1-6 fields with one separator (now and then a line of another width, a
    header, a blank line or a MovieID line), any newline style and encoding."""
    sep = draw(st.sampled_from(SEPARATORS))
    width = draw(st.integers(1, 6))
    rows = draw(st.lists(st.lists(TOKEN, min_size=width, max_size=width), min_size=1, max_size=12))
    lines = [sep.join(r) for r in rows]
    if draw(st.booleans()):
        header = draw(st.sampled_from([
            ["user", "item", "rating", "timestamp"], ["userId", "movieId", "rating", "timestamp"],
            ["user_id", "item_id"], ["uid", "iid", "score"], ["a", "b", "c"], ["user", "user", "item"],
            ["customer", "product", "stars", "date"], ["user", "item", "timestamp"],
        ]))
        lines.insert(0, sep.join(header[:width] if draw(st.booleans()) else header))
    for _ in range(draw(st.integers(0, 2))):
        odd = draw(st.sampled_from(["", " ", "1:", sep, sep * width, "1" + sep + "2", "#comment", "\x00"]))
        lines.insert(draw(st.integers(0, len(lines))), odd)
    end = draw(st.sampled_from(NEWLINES))
    text = end.join(lines) + draw(st.sampled_from(["", end, end + end]))
    return _encode(draw, text)


@st.composite
def netflix_text(draw) -> bytes:
    """'MovieID:' blocks of 'CustomerID,Rating,Date' lines, with hostile tokens here and there."""
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        movie = draw(st.integers(0, 20000).map(str)) if draw(st.integers(0, 9)) else draw(TOKEN)
        lines.append(movie + draw(st.sampled_from([":"] * 8 + [" :", "::", ""])))
        for _ in range(draw(st.integers(0, 5))):
            fields = [draw(st.integers(1, 3_000_000).map(str)), draw(st.integers(1, 5).map(str)),
                      draw(st.dates(dt.date(1990, 1, 1), dt.date(2010, 1, 1)).map(str))]
            fields = [draw(TOKEN) if draw(st.integers(0, 19)) == 0 else f for f in fields]
            if draw(st.integers(0, 9)) == 0:
                fields = fields[: draw(st.integers(0, 2))] + draw(st.lists(TOKEN, max_size=2))
            lines.append(",".join(fields))
    end = draw(st.sampled_from(NEWLINES))
    return _encode(draw, end.join(lines) + draw(st.sampled_from(["", end])), plain=True)


_LAYOUTS = {  # separator, header line (or None), whether ratings are half stars
    "ml-100k": ("\t", None), "ml-1m": ("::", None), "ml-latest": (",", "userId,movieId,rating,timestamp"),
    "csv": (",", "user,item,rating,timestamp"), "tsv": ("\t", None), "auto": (";", None),
}


@st.composite
def near_valid_text(draw, fmt: str) -> bytes:
    """A well-formed file of ``fmt`` (Netflix: its own layout) in which each field has a small
    chance of being a hostile token: these reach the validation, scale, duplicate and
    timestamp code that wholly random lines rarely get past the parser to."""
    if fmt == "netflix":
        return draw(netflix_text())
    sep, header = _LAYOUTS.get(fmt, (",", None))
    sep = sep if draw(st.integers(0, 4)) else draw(st.sampled_from(SEPARATORS))
    width = draw(st.sampled_from([4, 4, 3, 2]))
    # One timestamp style per file (a column mixing Unix seconds and dates is refused by design).
    stamps = draw(st.sampled_from([
        st.integers(800_000_000, 1_700_000_000).map(str),
        st.dates(dt.date(1971, 1, 1), dt.date(2200, 1, 1)).map(str),
        st.datetimes(dt.datetime(1971, 1, 1), dt.datetime(2200, 1, 1)).map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
    ]))
    hostile = st.one_of(TOKEN, st.sampled_from(NUMBERS + DATES))
    lines = [] if header is None or not draw(st.booleans()) else [sep.join(header.split(",")[:width])]
    for _ in range(draw(st.integers(1, 12))):
        fields = [str(draw(st.integers(1, 6))), str(draw(st.integers(1, 6))),
                  draw(st.sampled_from(["1", "2", "3", "4", "5", "4.5", "0.5", "3.0"])), draw(stamps)][:width]
        fields = [draw(hostile) if draw(st.integers(0, 24)) == 0 else f for f in fields]
        lines.append(sep.join(fields))
    end = draw(st.sampled_from(NEWLINES))
    return _encode(draw, end.join(lines) + draw(st.sampled_from(["", end])), plain=True)


def _encode(draw, text: str, plain: bool = False) -> bytes:
    """``text`` in a drawn encoding (``plain``: nearly always UTF-8), now and then with bytes
    that are not valid in it."""
    encoding = draw(st.sampled_from(ENCODINGS[:1] * (30 if plain else 6) + ENCODINGS))
    data = text.encode(encoding, errors="replace" if encoding in ("latin-1", "cp1252") else "surrogatepass")
    if draw(st.integers(0, 15)) == 0:  # invalid bytes somewhere
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\x80\x81"])) + data[at:]
    return data


@st.composite
def mutated(draw, fmt: str) -> bytes:
    """A valid file of ``fmt`` with a few bytes flipped, cut, duplicated or inserted."""
    data = bytearray(draw(st.sampled_from(seed_files()[fmt])))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup", "truncate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[at: at + draw(st.integers(1, 8))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=6)) if draw(st.booleans()) else \
                draw(st.sampled_from(NUMBERS + WORDS)).encode("utf-8", "surrogatepass")
        elif op == "dup":
            data[at:at] = data[at: at + draw(st.integers(1, 40))]
        else:
            del data[at:]
    return bytes(data)


def file_bytes(fmt: str) -> st.SearchStrategy[bytes]:
    """Any input for the reader of ``fmt``: structured text, mutations, or raw bytes."""
    parts = [near_valid_text(fmt), delimited_text(), mutated(fmt if fmt in seed_files() else "auto"),
             st.binary(max_size=200)]
    if fmt in ("netflix", "auto"):
        parts.append(netflix_text())
    return st.one_of(*parts)


# ----------------------------------------------------------------------------- reader options
COLUMNS = [None, "user,item,rating", "user,item,rating,timestamp", "user,item", "item,user,rating,_",
           "user,item,timestamp", "user,_,item,rating", "userId,movieId,rating", ["user", None, "item"],
           "rating,user", "user,user,item", "who,what", "", ",,,", "user,item,rating,timestamp,_,_"]
SEPS = [None, None, None, ",", "\t", "\\t", ";", "|", "::", "whitespace", "tab", " ", "ab", "", ":"]


@st.composite
def reader_options(draw, fmt: str) -> dict:
    """Keyword arguments a user might pass with the file (mostly none)."""
    options: dict = {}
    if draw(st.integers(0, 2)) == 0:
        options["columns"] = draw(st.sampled_from(COLUMNS))
    if draw(st.integers(0, 3)) == 0:
        options["sep"] = draw(st.sampled_from(SEPS))
    if draw(st.integers(0, 3)) == 0:
        options["scale"] = draw(st.sampled_from(scale_options()))
    if draw(st.integers(0, 3)) == 0:
        options["duplicates"] = draw(st.sampled_from(["error", "last", "mean"]))
    if draw(st.integers(0, 3)) == 0:
        options["implicit"] = draw(st.sampled_from([None, True, False]))
    if fmt != "parquet" and draw(st.integers(0, 5)) == 0:
        options["encoding"] = draw(st.sampled_from(ENCODINGS + ["ascii", "no-such-codec", "rot13", "hex"]))
    return {k: v for k, v in options.items() if v is not None or k == "implicit"}


# ----------------------------------------------------------------------------- Parquet tables
_COLUMN_NAMES = ["user", "item", "rating", "timestamp", "userId", "movieId", "score", "date", "x", "",
                 "user_id", "customer", "stars", "time", "User ID", "rating"]


@st.composite
def parquet_table(draw) -> pa.Table:
    """1-5 columns of assorted Arrow types (ints, floats with NaN/inf, text, dates, booleans,
    nulls, decimals, binary, lists, dictionaries), with alias or arbitrary names."""
    n_rows = draw(st.integers(0, 6))
    width = draw(st.integers(1, 5))
    names = draw(st.lists(st.one_of(st.sampled_from(_COLUMN_NAMES), st.text(max_size=8)),
                          min_size=width, max_size=width))
    columns = [draw(_arrow_column(n_rows)) for _ in range(width)]
    return pa.table(columns, names=names)


@st.composite
def near_valid_table(draw) -> pa.Table:
    """user, item, rating[, timestamp] columns of the usual types, now and then one hostile
    value (NaN, inf, null, off-scale, a huge id) or an odd column type."""
    n = draw(st.integers(1, 8))
    ids = lambda: draw(st.one_of(  # noqa: E731
        st.lists(st.integers(1, 5), min_size=n, max_size=n).map(lambda v: pa.array(v, pa.int64())),
        st.lists(st.sampled_from(["a", "b", "c", " ", "x"]), min_size=n, max_size=n).map(pa.array),
        st.lists(st.one_of(st.integers(1, 5).map(float), st.sampled_from([1.5, float("nan"), 1e300])),
                 min_size=n, max_size=n).map(pa.array),
        _arrow_column(n)))
    ratings = draw(st.one_of(
        st.lists(st.one_of(st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.0, 4.5]),
                           st.sampled_from([float("nan"), float("inf"), 0.0, 6.0, -1.0, None])),
                 min_size=n, max_size=n).map(lambda v: pa.array(v, pa.float64())),
        st.lists(st.integers(1, 5), min_size=n, max_size=n).map(pa.array),
        _arrow_column(n)))
    columns, names = [ids(), ids(), ratings], ["user", "item", "rating"]
    if draw(st.booleans()):
        columns.append(draw(st.one_of(
            st.lists(st.integers(0, 2_000_000_000), min_size=n, max_size=n).map(pa.array), _arrow_column(n))))
        names.append(draw(st.sampled_from(["timestamp", "date", "time"])))
    return pa.table(columns, names=names)


@st.composite
def _arrow_column(draw, n: int) -> pa.Array:
    kind = draw(st.sampled_from(["int", "float", "text", "timestamp", "date", "bool", "null", "decimal",
                                 "binary", "list", "dictionary", "uint", "duration"]))
    maybe = lambda s: st.one_of(st.none(), s) if draw(st.booleans()) else s  # noqa: E731
    if kind == "int":
        return pa.array(draw(st.lists(maybe(st.integers(-(2**63), 2**63 - 1)), min_size=n, max_size=n)), pa.int64())
    if kind == "uint":
        return pa.array(draw(st.lists(st.integers(0, 2**64 - 1), min_size=n, max_size=n)), pa.uint64())
    if kind == "float":
        return pa.array(draw(st.lists(maybe(st.floats()), min_size=n, max_size=n)), pa.float64())
    if kind == "text":
        return pa.array(draw(st.lists(maybe(TOKEN), min_size=n, max_size=n)), pa.string())
    if kind == "timestamp":
        unit = draw(st.sampled_from(["s", "ms", "us", "ns"]))
        tz = draw(st.sampled_from([None, "UTC", "Europe/Paris"]))
        # Parquet stores seconds as milliseconds: the writer itself refuses larger values.
        bound = 2**62 if unit != "s" else 2**62 // 1000
        values = draw(st.lists(maybe(st.integers(-bound, bound)), min_size=n, max_size=n))
        return pa.array(values, pa.timestamp(unit, tz=tz))
    if kind == "date":
        return pa.array(draw(st.lists(maybe(st.dates()), min_size=n, max_size=n)), pa.date32())
    if kind == "bool":
        return pa.array(draw(st.lists(maybe(st.booleans()), min_size=n, max_size=n)), pa.bool_())
    if kind == "null":
        return pa.nulls(n)
    if kind == "decimal":
        values = draw(st.lists(maybe(st.decimals(min_value=-999, max_value=999, places=2)), min_size=n, max_size=n))
        return pa.array(values, pa.decimal128(5, 2))
    if kind == "binary":
        return pa.array(draw(st.lists(maybe(st.binary(max_size=4)), min_size=n, max_size=n)), pa.binary())
    if kind == "list":
        return pa.array(draw(st.lists(maybe(st.lists(st.integers(0, 5), max_size=2)), min_size=n, max_size=n)),
                        pa.list_(pa.int64()))
    if kind == "duration":
        return pa.array(draw(st.lists(st.integers(-(2**40), 2**40), min_size=n, max_size=n)), pa.duration("s"))
    values = draw(st.lists(st.sampled_from(["1", "2", "x", "4.5"]), min_size=n, max_size=n))
    return pa.array(values).dictionary_encode()


# ----------------------------------------------------------------------------- metadata files
@st.composite
def metadata_file(draw) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(METADATA_NAMES)))
    seps = {"u.item": "|", "movies.dat": "::", "movies.csv": ",", "movie_titles.csv": ",", "movie_titles.txt": ","}
    sep = seps[name]
    width = draw(st.integers(1, 25))
    rows = draw(st.lists(st.lists(TOKEN, min_size=width, max_size=width), min_size=0, max_size=6))
    lines = [sep.join(r) for r in rows]
    if name == "movies.csv" and draw(st.booleans()):
        lines.insert(0, "movieId,title,genres")
    text = draw(st.sampled_from(NEWLINES)).join(lines)
    data = _encode(draw, text)
    return name, draw(st.one_of(st.just(data), st.binary(max_size=100)))


# ----------------------------------------------------------------------------- configuration
_SECTIONS = ["model", "train", "run"]
_KEYS = {
    "model": ["kind", "preset", "hidden", "activation", "output_activation", "orientation", "l2", "code_dropout",
              "input_dropout", "input_noise", "code_l1", "tied", "mask_input", "baseline", "loss", "nope"],
    "train": ["optimizer", "lr", "momentum", "weight_decay", "batch_size", "epochs", "schedule", "step_size", "gamma",
              "lbfgs_iterations", "validation", "patience", "min_delta", "max_grad_norm", "dense_refeeding",
              "shuffle", "accumulate_gradients", "loss_normalization", "checkpoint_every", "nope"],
    "run": ["seed", "device", "threads", "nope"],
}
_WORD_VALUES = ["autorec", "sae", "deep", "dae", "sparse", "course", "u-autorec", "sigmoid", "selu", "relu", "tanh",
                "identity", "item", "user", "auto", "mse", "bce", "adam", "sgd", "lbfgs", "momentum", "rmsprop",
                "adamw", "constant", "step", "cosine", "plateau", "observed", "all", "cpu", "cuda", "cuda:7", "", "x"]
TOML_LITERALS = [
    "0", "1", "-1", "2", "500", "1e-3", "0.5", "1.5", "-0.0", "inf", "-inf", "nan", "+nan", "1e308", "1e999",
    "9223372036854775807", "-9223372036854775808", "99999999999999999999", "true", "false", "[]", "[0]", "[-5]",
    "[500]", "[20, 10, 20]", "[inf]", "[nan]", "[1e300]", "[1.5]", "[true]", '["a"]', "[[1]]", "{}", "{a = 1}",
    '"autorec"', '"sae"', '"adam"', '"lbfgs"', '"cpu"', '"cuda"', '""', "'x'", "1979-05-27", "07:32:00",
    "1979-05-27T07:32:00Z", "0x7fffffffffffffff", "0o777", "0b101", "1_000",
]
SCALARS = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5),
              st.sampled_from(_WORD_VALUES), st.dates(), st.times(), st.datetimes(timezones=st.just(dt.timezone.utc))),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=2)),
    max_leaves=6,
)


def _field_values(default: object) -> st.SearchStrategy:
    """Values for a setting whose default is ``default``: mostly its own type, edge values
    first (zero, negative, huge, NaN, infinity), now and then any type at all."""
    if isinstance(default, bool):
        own = st.booleans()
    elif isinstance(default, int):
        own = st.one_of(st.integers(-2, 6), st.sampled_from([2**31, 2**63 - 1, 2**63, -(2**63), 10**30]))
    elif isinstance(default, float):
        own = st.one_of(st.floats(-2, 2), st.sampled_from([0.0, -0.0, 1.0, 1e300, -1e-300]), st.floats())
    elif isinstance(default, str):
        own = st.sampled_from(_WORD_VALUES)
    else:  # hidden: a list of layer sizes
        own = st.one_of(st.lists(st.integers(-1, 40), max_size=4), st.integers(-1, 40),
                        st.sampled_from([[10**30], [2**63], [1.5], [float("inf")], [float("nan")], "12", [True]]))
    return st.one_of(own, own, own, SCALARS)


def _defaults() -> dict[str, dict[str, object]]:
    from aerec.config import RunConfig, TrainConfig
    from aerec.models.families import AutoencoderParams

    return {name: {f.name: getattr(cls(), f.name) for f in dataclasses.fields(cls)}
            for name, cls in (("model", AutoencoderParams), ("train", TrainConfig), ("run", RunConfig))}


@st.composite
def config_dicts(draw) -> object:
    """A parsed TOML document: the known sections and keys with values of mostly the right
    type (at their edges), now and then unknown keys, wrong types or not a table at all."""
    if draw(st.integers(0, 19)) == 0:
        return draw(SCALARS)  # not even a table
    defaults = _defaults()
    data: dict = {}
    for section in draw(st.lists(st.sampled_from(_SECTIONS * 3 + ["extra"]), max_size=3, unique=True)):
        if section == "extra" or draw(st.integers(0, 19)) == 0:
            data[section] = draw(SCALARS)
            continue
        fields = defaults[section]
        keys = draw(st.lists(st.sampled_from(sorted(fields) + ["kind", "preset", "nope"] * (section == "model")),
                             max_size=3, unique=True))
        table = {}
        for key in keys:
            if key == "kind":
                table[key] = draw(st.one_of(st.sampled_from(["autorec", "sae", "deep", "dae", "sparse", "x"]), SCALARS))
            elif key == "preset":
                table[key] = draw(st.one_of(st.sampled_from(["course", "i-autorec", "u-autorec", "x"]), SCALARS))
            else:
                table[key] = draw(_field_values(fields.get(key, 0)))
        data[section] = table
    if isinstance(data.get("model"), dict) and "hidden" not in data["model"] and draw(st.booleans()):
        data["model"]["hidden"] = [draw(st.integers(1, 8))]  # small, so the network gets trained
    return data


@st.composite
def toml_text(draw) -> bytes:
    """TOML text: [sections] of key = literal lines, now and then broken or in odd bytes."""
    lines = []
    for section in draw(st.lists(st.sampled_from(_SECTIONS + ["extra", "model.sub", "train"]), max_size=4)):
        lines.append(draw(st.sampled_from([f"[{section}]", f"[[{section}]]", f"[ {section} ]", f"[{section}"])))
        for key in draw(st.lists(st.sampled_from(_KEYS.get(section.split(".")[0], ["x"])), max_size=4)):
            value = draw(st.one_of(st.sampled_from(TOML_LITERALS), st.sampled_from(_WORD_VALUES).map(repr),
                                   st.text(max_size=6)))
            lines.append(f"{key} = {value}")
    text = "\n".join(lines)
    data = text.encode("utf-8", errors="surrogatepass")
    return draw(st.one_of(st.just(data), st.just(data), st.binary(max_size=80),
                          st.just(b"\xef\xbb\xbf" + data), st.just(text.encode("utf-16", "surrogatepass"))))


def _toml(value: object) -> str:
    """``value`` as a TOML literal (what a user would type after ``--set key=``)."""
    import tomli_w

    try:
        text = tomli_w.dumps({"v": value})
    except (TypeError, ValueError):
        return str(value)
    return text.split("=", 1)[1].strip() if text.startswith("v =") else str(value)


@st.composite
def override_lists(draw) -> list[str]:
    """``--set`` strings: mostly section.key=value with a value of about the right type,
    now and then a malformed item (no '=', an unknown section, a bare word)."""
    defaults = _defaults()
    items = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.integers(0, 9)) == 0:
            items.append(draw(st.one_of(st.text(max_size=12), st.sampled_from(["=", ".=", "model.=1", "x=1", "train.lr"]))))
            continue
        section = draw(st.sampled_from(_SECTIONS * 6 + ["", "models", "model.x", "Train"]))
        keys = sorted(defaults.get(section, {"lr": 0.1, "x": 0})) + (["kind", "preset"] if section == "model" else [])
        key = draw(st.sampled_from(keys))
        default = defaults.get(section, {}).get(key, "x")
        value = draw(st.one_of(_field_values(default).map(_toml), _field_values(default).map(_toml),
                               st.sampled_from(TOML_LITERALS), st.sampled_from(_WORD_VALUES), st.text(max_size=8)))
        joiner = draw(st.sampled_from(["="] * 8 + [" = ", "==", ":"]))
        items.append(f"{section}.{key}{joiner}{value}")
    if draw(st.booleans()):
        items.append(f"model.hidden=[{draw(st.integers(1, 8))}]")  # small, so the network gets trained
    return items
