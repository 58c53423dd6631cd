"""Run the real console entry point (``run_cli``: one-line errors, exit 2) in-process and capture its streams."""

from __future__ import annotations

from dataclasses import dataclass

from click.testing import CliRunner

from sora_compute.cli import cli
from sora_compute.cli_support import run_cli


@dataclass
class Result:
    code: int
    out: str
    err: str


def main(*args: str) -> Result:
    """``sora-compute ARGS`` through ``main`` (the console script), in-process."""
    code = 0
    with CliRunner().isolation() as (out, err, _):
        try:
            run_cli(cli, list(args))
        except SystemExit as e:
            code = int(e.code or 0)
    return Result(code, out.getvalue().decode(), err.getvalue().decode())


def assert_one_line_error(r: Result, needle: str = "") -> str:
    assert r.code == 2, (r.code, r.out, r.err)
    lines = r.err.strip().splitlines()
    assert r.out == "" and len(lines) == 1, r.err
    assert "Traceback" not in r.err and needle in lines[0], lines
    return lines[0]
