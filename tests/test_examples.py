"""The example notebook runs top to bottom (its code cells executed as one script, as a kernel would)."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_notebook_executes():
    nb = json.loads((ROOT / "examples" / "quickstart.ipynb").read_text())
    namespace: dict = {}
    code_cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert len(code_cells) >= 6
    for cell in code_cells:
        exec(compile("".join(cell["source"]), "quickstart.ipynb", "exec"), namespace)  # noqa: S102
    assert namespace["est"].gpt3_multiple > 1
    assert namespace["mem"].fits
    assert len(namespace["grid"]) == 12


def test_readme_main_command_is_the_sora_estimate():
    from click.testing import CliRunner

    from sora_compute.cli import cli

    readme = (ROOT / "README.md").read_text()
    main = next(line for line in readme.splitlines() if line.startswith("python3 -m venv") and "pytest" not in line)
    assert main.endswith(".venv/bin/sora-compute estimate sora")
    out = CliRunner().invoke(cli, ["estimate", "sora"]).output
    assert "x GPT-3 175B" in out and "Cluster plans" in out and "Inference" in out
