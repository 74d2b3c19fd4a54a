"""The server's limits and switches: defaults, environment variables, command-line flags.

Precedence (later wins): the defaults below < ``AEREC_SERVE_*`` environment variables <
``aerec serve`` flags. Every limit answers a request that passes it with a clear 4xx naming
the limit and how to raise it, never with a slow or crashing server.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Mapping

from aerec.errors import ConfigError

__all__ = ["ServeSettings", "ENV_PREFIX"]

ENV_PREFIX = "AEREC_SERVE_"


@dataclass(frozen=True)
class ServeSettings:
    """Limits of one server.

    Attributes:
        max_ratings: most ratings in one ``POST /v1/recommendations`` body (422 above).
        max_n: most recommendations per answer, and most items per ``GET /v1/items`` page (422 above).
        max_pairs: most (user, item) pairs in one ``POST /v1/predict`` body (422 above).
        max_body_bytes: largest request body accepted (413 above).
        cors_origins: origins allowed to call the API from other web pages; empty = CORS off.
    """

    max_ratings: int = 1000
    max_n: int = 100
    max_pairs: int = 10_000
    max_body_bytes: int = 1 << 20
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "cors_origins":
                if isinstance(value, str) or not all(isinstance(o, str) and o for o in value):
                    raise ConfigError(f"cors_origins must be a list of origins such as https://example.org; got {value!r}")
                object.__setattr__(self, f.name, tuple(value))
            elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{f.name} must be a positive whole number; got {value!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServeSettings:
        """Defaults, then ``AEREC_SERVE_<NAME>`` variables, then ``overrides`` that are not None.

        ``AEREC_SERVE_CORS_ORIGINS`` is a comma-separated list.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            var = ENV_PREFIX + f.name.upper()
            text = environ.get(var)
            if text is None or not text.strip():
                continue
            if f.name == "cors_origins":
                values[f.name] = tuple(o.strip() for o in text.split(",") if o.strip())
                continue
            try:
                values[f.name] = int(text.strip().replace("_", ""))
            except ValueError:
                raise ConfigError(f"{var} must be a positive whole number; got {text!r}") from None
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown server setting(s) {sorted(unknown)}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The ``AEREC_SERVE_*`` variables that reproduce these settings (for worker processes)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[ENV_PREFIX + f.name.upper()] = ",".join(value) if f.name == "cors_origins" else str(value)
        return out

    def public(self) -> dict[str, int]:
        """The limits a client may want to know (``GET /health``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "cors_origins"}
