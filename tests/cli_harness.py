"""Running the `depthcli` console entry point in-process, as a user's shell would (for hostile-input tests)."""

from __future__ import annotations

import signal
import sys

import pytest

from depthcli.cli.app import main

CASE_TIMEOUT_S = 120  # a case that hangs fails instead of blocking the suite


class Hung(Exception):
    pass


def run_cli(monkeypatch, *args) -> int:
    """Exit status of `depthcli ARGS` run through `main` (which always ends in SystemExit, as a script does)."""
    monkeypatch.setattr(sys, "argv", ["depthcli", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code


def run_main(argv: list, monkeypatch, capsys) -> tuple[int | None, str, str]:
    """(exit status, stdout, stderr) of `depthcli ARGV` run through `main`; a hang fails the case."""
    monkeypatch.setattr(sys, "argv", ["depthcli", *map(str, argv)])

    def hung(*_):
        raise Hung(f"still running after {CASE_TIMEOUT_S} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(CASE_TIMEOUT_S)
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(code, out: str, err: str) -> str:
    """The error line of a run that must end in one clean line with exit status 2 (asserts it)."""
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), f"exit {code}\n{out}\n{err}"
    assert "Traceback" not in out + err
    return lines[0]
