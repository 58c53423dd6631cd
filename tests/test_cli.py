"""The CLI through click's CliRunner: version, presets, show, and one-line errors (exit 2)."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from sora_compute import __version__
from sora_compute.cli import cli


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_version():
    r = run("--version")
    assert r.exit_code == 0 and __version__ in r.output


def test_presets_lists_the_zoo_as_json():
    r = run("presets", "--format", "json")
    assert r.exit_code == 0
    rows = {row["preset"]: row for row in json.loads(r.output)}
    assert rows["dit-xl-2"]["dit_params"] == 674_834_720
    assert rows["dit-xl-2"]["video_tokens"] == 256
    assert rows["sora"]["video_tokens"] == 61 * 45 * 80


def test_show_sora_prints_spec_and_exact_params():
    r = run("show", "sora")
    assert r.exit_code == 0
    assert "219,600 video" in r.output
    assert "4,762,310,656" in r.output  # T5-XXL encoder


@pytest.mark.parametrize("args, needle", [
    (["show", "sora-xl"], "unknown preset 'sora-xl'"),
    (["show", "dit-xl2"], "did you mean 'dit-xl-2'"),
    (["show"], "Missing argument"),
    (["nope"], "No such command"),
])
def test_bad_input_is_one_line_exit_2(args, needle):
    proc = subprocess.run([sys.executable, "-m", "sora_compute.cli", *args], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
