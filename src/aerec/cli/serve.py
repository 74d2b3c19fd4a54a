"""``aerec serve DIR``: the HTTP API and the web page for a trained model (uvicorn + FastAPI).

A thin command: it loads the model (so a bad directory is a clear error before anything
listens), builds the app with :func:`aerec.serve.create_app`, and runs uvicorn. Limits come
from the flags, else ``AEREC_SERVE_*`` environment variables, else the defaults
(:class:`aerec.serve.ServeSettings`). With ``--workers N`` each of N processes loads the
model itself (they find it through ``AEREC_SERVE_MODEL``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from pathlib import Path
from typing import Iterator

import typer
from rich.markup import escape

from aerec.cli import app, err_console
from aerec.errors import ConfigError

__all__ = ["serve_command", "is_loopback"]

_LIMITS = "Limits (env: AEREC_SERVE_<NAME>)"


def is_loopback(host: str) -> bool:
    """True when ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listenable(host: str, port: int) -> None:
    """A ConfigError (exit 2) when ``host:port`` cannot be listened on (in use, no such address,
    a privileged port), said before the banner that would announce a server that never starts.
    uvicorn binds again right after; the socket options are the same as its own."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host}: {exc.strerror}; check --host") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another --port, or stop what uses it"
            ) from None


@app.command("serve")
def serve_command(
    model_dir: Path = typer.Argument(..., metavar="DIR", help="A model directory written by aerec train."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 = every network; see docs/serving.md)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", min=1, help="Server processes, each with its own copy of the model."),
    threads: int = typer.Option(
        1, "--threads", min=0, help="CPU threads torch uses per process (0 = torch's default); 1 suits many small requests."
    ),
    max_ratings: int | None = typer.Option(
        None, "--max-ratings", min=1, help="Most ratings per new user [1000].", rich_help_panel=_LIMITS
    ),
    max_n: int | None = typer.Option(
        None, "--max-n", min=1, help="Most recommendations or items per answer [100].", rich_help_panel=_LIMITS
    ),
    max_pairs: int | None = typer.Option(
        None, "--max-pairs", min=1, help="Most pairs per /v1/predict [10000].", rich_help_panel=_LIMITS
    ),
    max_body_bytes: int | None = typer.Option(
        None, "--max-body-bytes", min=1, help="Largest request body in bytes [1048576].", rich_help_panel=_LIMITS
    ),
    cors_origin: list[str] | None = typer.Option(
        None, "--cors-origin", metavar="URL", help="Let web pages from this origin call the API (repeatable; default: none).",
        rich_help_panel=_LIMITS,
    ),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn's log level: critical, error, warning, info, debug."),
) -> None:
    """Serve a model: JSON API (docs at /docs) and a web page at / that recommends to its visitor."""
    try:
        import uvicorn

        from aerec.serve import ServeSettings, ServingModel, create_app
        from aerec.serve.app import MODEL_ENV
    except ModuleNotFoundError as exc:
        err_console.print(f"[bold red]error:[/] aerec serve needs {exc.name}: pip install 'aerec[serve]'")
        raise typer.Exit(1) from None
    import torch

    from aerec.loading import load_model

    settings = ServeSettings.from_env(
        max_ratings=max_ratings, max_n=max_n, max_pairs=max_pairs, max_body_bytes=max_body_bytes,
        cors_origins=tuple(cors_origin) if cors_origin else None,
    )
    if threads > 0:
        torch.set_num_threads(threads)
    engine = ServingModel(load_model(model_dir))  # a bad directory fails here, with exit 2
    if not is_loopback(host):
        err_console.print(
            f"[bold yellow]warning:[/] listening on {escape(host)}: anyone who can reach this machine can use the "
            "API. It has no authentication and no TLS; put it behind a reverse proxy that adds them.",
            soft_wrap=True,
        )
    check_listenable(host, port)
    info = engine.info()
    shown = f"[{host}]" if ":" in host else host
    err_console.print(
        f"aerec: serving {escape(str(model_dir))} ({info['model']}, {info['users']} users, {info['items']} items) "
        f"at http://{escape(shown)}:{port}/  (API docs: /docs)",
        soft_wrap=True,
    )
    options = dict(host=host, port=port, log_level=log_level, server_header=False, proxy_headers=False)
    if workers == 1:
        uvicorn.run(create_app(engine, settings), **options)
        return
    # Worker processes import the app themselves: they read the model and limits from the environment.
    os.environ.update(settings.to_env())
    os.environ[MODEL_ENV] = str(Path(model_dir).resolve())
    if threads > 0:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    del engine
    with _listener_with_tcp_nodelay(uvicorn):
        uvicorn.run("aerec.serve.app:app_from_env", factory=True, workers=workers, **options)


@contextlib.contextmanager
def _listener_with_tcp_nodelay(uvicorn) -> Iterator[None]:
    """Make the socket uvicorn binds for its workers say it is TCP, so replies are not delayed.

    With ``--workers N`` uvicorn binds the listening socket itself, with ``proto`` 0; accepted
    connections inherit it, asyncio then leaves Nagle's algorithm on, and every keep-alive
    request after the first waits ~40 ms for the client's delayed ACK (uvicorn issue #3149:
    measured here, 2 workers gave 151 requests/s and p50 52 ms before, 1,234 requests/s and
    p50 5 ms after). A no-op where uvicorn already sets ``proto``.
    """
    config_cls = getattr(getattr(uvicorn, "config", None), "Config", None)
    original = getattr(config_cls, "bind_socket", None)
    if original is None:
        yield
        return

    def bind_socket(self):
        sock = original(self)
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
            sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
        return sock

    config_cls.bind_socket = bind_socket
    try:
        yield
    finally:
        config_cls.bind_socket = original
