"""Serving a trained model: an HTTP API (FastAPI) and a web page that recommends to its visitor.

    >>> from aerec.serve import create_app          # doctest: +SKIP
    >>> app = create_app("runs/ml100k")              # doctest: +SKIP

or from the command line: ``aerec serve runs/ml100k [--host 127.0.0.1] [--port 8000]``.
Needs the ``serve`` extra (``pip install 'aerec[serve]'``: fastapi, uvicorn, pydantic);
see docs/serving.md.
"""

from __future__ import annotations

from aerec.serve.engine import Scored, ServingModel, UnknownIdError
from aerec.serve.settings import ServeSettings

__all__ = ["ServeSettings", "ServingModel", "Scored", "UnknownIdError", "create_app", "app_from_env"]


def __getattr__(name: str):
    # The FastAPI app is imported on first use, so the engine works without FastAPI installed.
    if name in ("create_app", "app_from_env"):
        from aerec.serve import app

        return getattr(app, name)
    raise AttributeError(f"module 'aerec.serve' has no attribute {name!r}")
