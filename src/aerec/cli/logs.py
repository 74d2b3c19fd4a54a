"""The library's log records on the terminal: Rich lines on stderr, and progress bars.

The library only logs (``logging.getLogger("aerec....")``); this module is where the ``aerec``
command decides how that looks. Records at INFO and above become one line each on stderr;
records that carry a ``progress`` dict (training epochs, :mod:`aerec.training.progress`; downloads,
:mod:`aerec.data.download`) drive a Rich progress bar instead of printing lines.
"""

from __future__ import annotations

import logging

from rich.markup import escape

__all__ = ["RichLogHandler", "install"]

_STYLE = {"DEBUG": "dim", "INFO": "dim", "WARNING": "yellow", "ERROR": "bold red", "CRITICAL": "bold red"}


class RichLogHandler(logging.Handler):
    """Prints records on the CLI's stderr console; draws progress records as a bar."""

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__(level)
        self._bar = None
        self._task = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            progress = getattr(record, "progress", None)
            if isinstance(progress, dict) and "event" in progress:
                self._draw(progress)
                return
            from aerec.cli import err_console

            style = _STYLE.get(record.levelname, "dim")
            err_console.print(f"[{style}]{record.levelname.lower()}:[/] {escape(record.getMessage())}", soft_wrap=True)
        except Exception:  # a display problem must never stop the work
            self.handleError(record)

    def _draw(self, progress: dict) -> None:
        event, kind = progress["event"], progress.get("kind", "epochs")
        if event == "start":
            self._start_epochs(progress) if kind == "epochs" else self._start_download(progress)
        elif event == "end":
            self._stop()
        elif self._bar is not None and kind == "epochs":
            fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
            self._bar.update(self._task, completed=progress["epoch"], loss=fmt(progress.get("loss")),
                             val=fmt(progress.get("val")), best=fmt(progress.get("best")))
        elif self._bar is not None:
            self._bar.update(self._task, completed=progress["completed"])

    def _start_epochs(self, progress: dict) -> None:
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        label = escape(str(progress.get("label", "RMSE")))
        self._start(
            [TextColumn("epoch {task.completed:>4.0f}/{task.total:.0f}"), BarColumn(),
             TextColumn("loss {task.fields[loss]}"),
             TextColumn(f"val {label} " + "{task.fields[val]} (best {task.fields[best]})"),
             TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()],
            "train", progress["epochs"], progress.get("epoch") or 0, loss="-", val="-", best="-",
        )

    def _start_download(self, progress: dict) -> None:
        from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn, TransferSpeedColumn

        self._start(
            [TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
             TimeRemainingColumn()],
            escape(str(progress.get("name", "download"))), progress.get("total"), progress.get("completed") or 0,
        )

    def _start(self, columns: list, description: str, total, completed, **fields) -> None:
        from rich.progress import Progress

        from aerec.cli import err_console

        self._stop()
        self._bar = Progress(*columns, console=err_console)
        self._bar.start()
        self._task = self._bar.add_task(description, total=total, completed=completed, **fields)

    def _stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
        self._bar, self._task = None, None


def install() -> None:
    """Show the ``aerec`` loggers' records at INFO and above through :class:`RichLogHandler`.

    Idempotent: a second call (every command invocation makes one) keeps the one handler.
    """
    logger = logging.getLogger("aerec")
    if not any(isinstance(h, RichLogHandler) for h in logger.handlers):
        logger.addHandler(RichLogHandler())
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
