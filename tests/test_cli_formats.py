"""Issue 12, "formats": every command honours --format; markdown, CSV and JSON outputs parse back into tables
(markdown with human-readable numbers and "—" for a missing value; CSV and JSON with every section)."""

import io
import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from tests.clirun import main

COMMANDS = [
    ["presets"], ["gpus"], ["show", "sora"], ["flops", "sora", "--resolution", "720p"],
    ["memory", "sora", "--gpus", "64"], ["estimate", "sora"], ["plan", "sora", "--budget", "1e6"],
    ["sweep", "--duration", "5,10"], ["calibrate"], ["report"], ["recipe", "open-sora-2.0", "--gpu", "h100-sxm,h200"],
]


@pytest.fixture(autouse=True)
def small_slow_commands(monkeypatch, tmp_path):
    """calibrate on two cases and report's writer stubbed: these tests check what the commands print."""
    import sora_compute.calibration.profile as cal
    import sora_compute.report as rep

    cases = cal.default_cases()[:2]
    monkeypatch.setattr(cal, "default_cases", lambda: cases)

    def fake_report(sc, out: Path, **kw):
        (out / "report.md").write_text(f"# {sc.name}\n")
        return [out / "report.md"]

    monkeypatch.setattr(rep, "write_report", fake_report)
    monkeypatch.chdir(tmp_path)


def markdown_tables(text: str) -> list[pd.DataFrame]:
    """Every pipe table in ``text`` as a DataFrame of strings (header, separator, rows of one width)."""
    tables, block = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if block:
            rows = [[c.strip() for c in r.strip().strip("|").split("|")] for r in block]
            assert len(rows) >= 2 and all(set(c) <= set("-: ") for c in rows[1]), block[:2]
            assert all(len(r) == len(rows[0]) for r in rows), block
            tables.append(pd.DataFrame(rows[2:], columns=rows[0]))
            block = []
    return tables


def csv_sections(text: str) -> dict[str, pd.DataFrame]:
    """A plain CSV as {"": table}; sections ("# name" then a CSV, blank line between) as {name: table}."""
    if not text.startswith("# "):
        return {"": pd.read_csv(io.StringIO(text))}
    out = {}
    for chunk in text.removeprefix("# ").split("\n# "):
        name, _, body = chunk.partition("\n")
        out[name] = pd.read_csv(io.StringIO(body))
    return out


def json_tables(doc: dict) -> dict[str, pd.DataFrame]:
    return {k: pd.DataFrame(v) for k, v in doc.items()
            if isinstance(v, list) and v and all(isinstance(r, dict) for r in v)}


def finite_everywhere(v) -> None:
    if isinstance(v, float):
        assert math.isfinite(v)
    elif isinstance(v, dict):
        for x in v.values():
            finite_everywhere(x)
    elif isinstance(v, list):
        for x in v:
            finite_everywhere(x)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_every_format_parses_back(command):
    outs = {}
    for fmt in ("json", "csv", "markdown", "table"):
        r = main(*command, "--format", fmt)
        assert r.code == 0, (fmt, r.err)
        outs[fmt] = r.out
    doc = json.loads(outs["json"])
    assert doc["command"] == command[0] and isinstance(doc["units"], dict) and isinstance(doc["assumptions"], dict)
    finite_everywhere(doc)
    tables = json_tables(doc)
    assert tables, "JSON carries its tables"
    csv = csv_sections(outs["csv"])
    if list(csv) == [""]:
        assert len(tables) == 1
        (name, table), = tables.items()
        assert len(csv[""]) == len(table) and list(csv[""].columns) == list(table.columns)
    else:
        assert set(csv) == set(tables)  # every section
        for name, t in tables.items():
            assert len(csv[name]) == len(t) and list(csv[name].columns) == list(t.columns), name
    md = markdown_tables(outs["markdown"])
    assert len(md) == len(tables)
    cells = [c for t in md for col in t.columns for c in t[col]]
    assert not [c for c in cells if re.search(r"\d\.\d{7,}", c)], "no 16-digit floats in markdown"
    assert not [c for c in cells if c.lower() in ("nan", "none", "")], "'—' for a missing value"
    assert "nan" not in outs["table"].lower().split()


def test_missing_values_show_as_a_dash():
    for fmt in ("table", "markdown"):
        out = main("gpus", "--format", fmt).out
        assert "—" in out and "NaN" not in out and "nan" not in out.lower().split()


def test_presets_fits_120_columns():
    out = main("presets").out
    assert max(len(line) for line in out.splitlines()) <= 120
    row = next(line for line in out.splitlines() if line.strip().startswith("hunyuanvideo"))
    assert " 50 " in row and " no " in row  # guidance-distilled: no CFG pair


def test_estimate_json_has_raw_numbers_units_and_assumptions():
    doc = json.loads(main("estimate", "sora", "--format", "json").out)
    assert doc["assumptions"]["target"].startswith("seed report")
    assert doc["units"]["*_flops"] == "FLOPs (= 2 x MACs)"
    assert doc["training"]["model_flops"] == pytest.approx(2.58e24, rel=0.01)
    assert {"stages", "clusters", "serving", "sensitivity", "published", "published_inference"} <= set(doc)


def test_progress_only_on_a_terminal():
    r = main("calibrate", "--out", "cal")
    assert r.code == 0 and r.err == ""  # a captured stderr is not a terminal: no bar, nothing stray


def test_help_time_estimates_are_stated():
    assert "about 12 s" in main("calibrate", "--help").out
    assert "about 17 s" in main("report", "--help").out
