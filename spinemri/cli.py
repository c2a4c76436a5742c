"""Command line entry point ``spinemri``: argument parsing only.

Each sub-command lives in its own module under :mod:`spinemri.commands` with
two functions, ``add_parser(subparsers)`` and ``run(args) -> int``; this module
wires them together, sets up logging and maps errors to exit codes:

* 0 — success;
* 1 — some cases failed (cohort run), or a :class:`SpinemriError` that is not
  about the input itself;
* 2 — bad usage (also an option value refused while the parameter objects are
  built, before any input is read: :func:`check_options`), or no usable input
  (a single-case command whose input is refused: missing file, unreadable
  DICOM, mask on another grid, ...).

Unexpected exceptions are bugs and show their traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TypeVar

from ._version import __version__
from .errors import ConfigError, GeometryError, InputError, LabelSchemeError, SchedulerError, SpinemriError

__all__ = ["build_parser", "main", "check_options", "one_line_warning", "UsageError", "COMMANDS"]

T = TypeVar("T")

#: Sub-command name -> module under spinemri.commands (explicit, no discovery by naming convention).
COMMANDS: dict[str, str] = {
    "info": "spinemri.commands.info",
    "phantom": "spinemri.commands.phantom",
    "measure": "spinemri.commands.measure",
    "link": "spinemri.commands.link",
    "analyze": "spinemri.commands.analyze",
    "run": "spinemri.commands.run",
    "compare": "spinemri.commands.compare",
    "demo": "spinemri.commands.demo",
}


class UsageError(ConfigError):
    """An option value refused while the parameters are built, before any input is read (exit 2)."""


_INPUT_ERRORS = (InputError, GeometryError, LabelSchemeError)
#: "SegmentParams.k = ..." / "PhantomParams: rows=..." / "workers must be ..." -> the parameter named
#: in a ConfigError
_FIELD = re.compile(
    r"\b(?:SegmentParams|MetricsParams|StatsParams|LinkParams)\.(\w+)|\bPhantomParams: (\w+)=|^(\w+) must be"
)


def check_options(build: Callable[[], T], args: argparse.Namespace, flags: dict[str, str] | None = None) -> T:
    """Build a command's parameter objects from its options; a refused value is bad usage.

    Call it before any input is read, so that a bad option fails at once (exit 2)
    instead of in every case.

    Parameters
    ----------
    build : callable
        Builds and returns the parameter objects (raises :class:`ConfigError`).
    args : argparse.Namespace
        The parsed command line (to name the option that was refused).
    flags : dict of str -> str, optional
        Parameter field -> option, where the option is not ``--`` + the field
        with ``-`` for ``_`` (``{"n_slices": "--slices"}``).

    Returns
    -------
    object
        What ``build`` returns.

    Raises
    ------
    UsageError
        ``build`` raised ConfigError; the one-line message starts with the option.
    """
    try:
        return build()
    except ConfigError as exc:
        message = str(exc)
        found = _FIELD.search(message)
        field = (found.group(1) or found.group(2) or found.group(3)) if found else None
        if field and field in (flags or {}):
            message = f"{(flags or {})[field]}: {message}"
        elif field and getattr(args, field, None) is not None:
            message = f"--{field.replace('_', '-')}: {message}"
        raise UsageError(message) from exc


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available sub-command.

    Returns
    -------
    argparse.ArgumentParser
        The ``spinemri`` parser with the global options (``--version``,
        ``-v/--verbose``, ``--log-file``, ``--debug``) and one required
        sub-command per entry of :data:`COMMANDS`, each registered by its
        module's ``add_parser``; the parsed ``func`` is the command's ``run``.
    """
    parser = argparse.ArgumentParser(
        prog="spinemri",
        description="Per-vertebra metastatic marrow burden from spine MRI, linked to pain scores.",
    )
    parser.add_argument("--version", action="version", version=f"spinemri {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("--log-file", help="also write the log to this file")
    parser.add_argument("--debug", action="store_true", help="show the traceback of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module_name in COMMANDS.values():
        importlib.import_module(module_name).add_parser(sub)
    return parser


def _setup_logging(verbose: int, log_file: str | None) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    root = logging.getLogger("spinemri")
    root.setLevel(level)
    for old in [h for h in root.handlers if getattr(h, "spinemri_cli", False)]:
        root.removeHandler(old)  # an earlier main() in this process (tests, notebooks)
        old.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for h in handlers:
        h.setFormatter(fmt)
        h.addFilter(_scrub_record)
        h.spinemri_cli = True  # type: ignore[attr-defined]
        root.addHandler(h)


def one_line_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None
) -> str:
    """The command line's warning format: one line, no Python source line.

    Parameters
    ----------
    message : Warning or str
        The warning.
    category : type
        Its class (``SpinemriWarning``, ...).
    filename, lineno, line
        Where it was raised (not shown: users need the message, not spinemri's source).

    Returns
    -------
    str
        ``"warning: <message>"`` and a newline (the category name too when it is not a SpinemriWarning).
    """
    from .errors import SpinemriWarning

    kind = "" if issubclass(category, SpinemriWarning) else f" ({category.__name__})"
    return f"warning{kind}: {message}\n"


def _scrub_record(record: logging.LogRecord) -> bool:
    """Log filter: the generic identifier patterns removed from every line (:mod:`spinemri.io.scrub`)."""
    from .io.scrub import scrub_text

    message = record.getMessage()
    scrubbed = scrub_text(message)
    if scrubbed != message:
        record.msg, record.args = scrubbed, None
    return True


def _error_text(exc: SpinemriError, args: argparse.Namespace) -> str:
    """The message of ``exc`` scrubbed of the identifying header values of the command's DICOM inputs."""
    from .io.scrub import dicom_identifiers, scrub_text

    inputs = [getattr(args, name, None) for name in ("image", "mask", "path")]
    keep = [args.patient_id] if getattr(args, "patient_id", None) else []
    return scrub_text(str(exc), dicom_identifiers(inputs), keep=keep)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; None reads ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status: 0 success; 1 some cases failed (``spinemri run``) or a
        :class:`~spinemri.errors.SpinemriError` that is not about the input;
        2 bad usage (a :class:`UsageError`, or an argument argparse refuses, which
        exits through :class:`SystemExit` with status 2) or no usable input
        (:class:`~spinemri.errors.InputError`, :class:`~spinemri.errors.GeometryError`,
        :class:`~spinemri.errors.LabelSchemeError`). The printed message is scrubbed of
        identifiers (:mod:`spinemri.io.scrub`). With ``--debug`` a SpinemriError is re-raised
        with its traceback instead (not scrubbed: for debugging on the data's own machine).
        130 after Ctrl-C (one line saying how to resume, no traceback); 0 when the reader of
        the output went away (a broken pipe, as in ``spinemri measure ... | head``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, args.log_file)
    formatwarning = warnings.formatwarning
    warnings.formatwarning = one_line_warning
    try:
        return _run(args)
    finally:
        warnings.formatwarning = formatwarning


def _run(args: argparse.Namespace) -> int:
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # a broken pipe shows here, not in Python's flush at exit
        return status
    except SpinemriError as exc:
        if args.debug:
            raise
        print(f"spinemri {args.command}: error: {_error_text(exc, args)}", file=sys.stderr)
        return 2 if isinstance(exc, (*_INPUT_ERRORS, UsageError, SchedulerError)) else 1
    except KeyboardInterrupt:
        if args.debug:
            raise
        # every output is written to a temporary name and renamed: nothing half-written is left
        hint = (
            "rerun the same command to resume (finished cases are kept and skipped)"
            if args.command in ("run", "demo")
            else "nothing half-written was left"
        )
        print(f"spinemri {args.command}: interrupted; {hint}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``spinemri measure ... | head``): stop quietly, as Unix tools do
        _silence_stdout()
        return 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that Python's flush at exit does not report the broken pipe."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (captured output)
        pass


if __name__ == "__main__":  # pragma: no cover
    # ``python -m spinemri.cli``: run the imported module's main, not this __main__ copy, whose
    # UsageError is another class than the one the commands raise (they all exited 1, not 2)
    from spinemri.cli import main as _main

    sys.exit(_main())
