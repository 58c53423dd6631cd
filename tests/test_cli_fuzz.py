"""Issue 12: a hypothesis-driven fuzz of the command line. Generated command lines across every command (numbers
from the whole float range with inf/NaN/huge/negative, odd strings, unknown names, malformed scenario files) each
end in exit 0 with only finite numbers in the JSON output, or in exit 2 with one line on stderr and no traceback.

calibrate and report are slow by nature: they are fuzzed on their option parsing and error paths only (every
generated line carries one option that cannot parse, or a scenario that cannot load)."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.clirun import main

EXAMPLES = {"presets": 40, "gpus": 40, "show": 100, "flops": 220, "memory": 200, "estimate": 240, "plan": 200,
            "sweep": 220, "calibrate": 100, "report": 100,
            "demand": 150, "validate": 8, "recipe": 80, "serve": 40}  # 1,738 drawn
SEEN: dict[str, set[tuple[str, ...]]] = {}

_DIR = Path(tempfile.mkdtemp(prefix="sora-compute-fuzz-"))
_FILES = {
    "small.yaml": "preset: dit-s-2\nstages:\n  - {name: a, samples: 1.0e6, buckets: [{width: 256, height: 256, "
                  "num_frames: 1}]}\n",
    "wrapped.json": json.dumps({"w": {"preset": "dit-s-2", "stages": [
        {"name": "a", "samples": 1e6, "buckets": [{"width": 256, "height": 256, "num_frames": 1}]}]}}),
    "inf.yaml": "preset: dit-s-2\nstages:\n  - {name: a, samples: .inf, buckets: [{width: 256, height: 256, "
                "num_frames: 1}]}\n",
    "nan.json": '{"preset": "dit-s-2", "stages": [{"name": "a", "samples": NaN, "buckets": '
                '[{"width": 256, "height": 256, "num_frames": 1}]}]}',
    "huge.yaml": "preset: dit-s-2\nstages:\n  - {name: a, samples: 1.0e308, buckets: [{width: 256, height: 256, "
                 "duration_s: 1.0e300, fps: 1.0e300}]}\n",
    "twice.yaml": "preset: dit-s-2\nstages:\n  - {name: a, samples: 1, buckets: [{width: 256, height: 256, "
                  "num_frames: 1}]}\n  - {name: a, samples: 1, buckets: [{width: 256, height: 256, num_frames: 1}]}\n",
    "broken.yaml": "preset: sora\nstages: [\n",
    "broken.json": '{"preset": "sora", ',
    "list.yaml": "- 1\n- 2\n",
    "empty.yaml": "",
    "scalar.json": "3",
    "nopreset.yaml": "preset: [1, 2]\nstages: []\n",
    "unknown.yaml": "preset: nope\nstages:\n  - {name: a, samples: 1, buckets: [{width: 256, height: 256}]}\n",
    "binary.yaml": "\x00\x01\x02\xff",
    "market.yaml": "sources: [{name: a, minutes_per_day: 1.0e6, ai_share: 0.5}]\nmodel: dit-s-2\n",
    "market_huge.yaml": "sources: [{name: a, minutes_per_day: 1.0e12, ai_share: 1}]\ncandidates: 1000\n"
                        "peak_to_average: 100\nutilisation: 0.01\ngpu: a100-40gb\n",
    "recipe.yaml": "preset: dit-s-2\nstages:\n  - {name: a, iterations: 100, gpus: 8, cp: 2, buckets: [{width: 256, "
                   "height: 256, num_frames: 1, batch_per_rank: 4}, {width: 512, height: 512, num_frames: 1, "
                   "batch_per_rank: 1, weight: 3}]}\n",
    "recipe_global.json": json.dumps({"preset": "dit-s-2", "goodput": {"failures": {"fraction": 0.1, "source": "x"}},
                                      "stages": [{"name": "a", "iterations": 10, "gpus": 4, "global_batch": 64,
                                                  "buckets": [{"width": 256, "height": 256, "num_frames": 1}]}]}),
    "recipe_huge.yaml": "preset: dit-s-2\nstages:\n  - {name: a, iterations: 9007199254740992, gpus: 9007199254740992, "
                        "buckets: [{width: 256, height: 256, num_frames: 1, batch_per_rank: 9007199254740992}]}\n",
    "recipe_inf.yaml": "preset: dit-s-2\nstages:\n  - {name: a, iterations: 1, gpus: 1, buckets: [{width: 256, "
                       "height: 256, num_frames: 1, batch_per_rank: 1, weight: .inf}]}\n",
    "market_inf.json": '{"sources": [{"name": "a", "minutes_per_day": Infinity, "ai_share": 0.5}]}',
}
for _name, _text in _FILES.items():
    (_DIR / _name).write_text(_text)
(_DIR / "folder.yaml").mkdir(exist_ok=True)
SCENARIO_FILES = [str(_DIR / n) for n in [*_FILES, "folder.yaml", "missing.yaml", "missing.json"]]

WEIRD = ["", " ", "-", "--", "x", "é", "0", "-0", "1e309", "-1e309", "inf", "-inf", "nan", "NaN", "Infinity",
         "1,2", ",", "5..60:5", "60..5:5", "1..1e9:1e-9", "1..", "..", "1e-320", "0x10", "1_000", "None", "null"]
_plausible = st.one_of(st.floats(min_value=1e-3, max_value=1e4).map(lambda x: f"{x:.6g}"),
                       st.integers(1, 64).map(str), st.sampled_from(["1", "2", "8", "0.5", "1.2", "30", "1e6"]))
numbers = st.one_of(  # about half plausible values, half from the whole range and odd strings
    _plausible, _plausible, _plausible, _plausible,
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**30, 10**30).map(str),
    st.sampled_from(WEIRD),
    st.text(max_size=6),
)
lists = st.one_of(numbers, st.lists(numbers, min_size=1, max_size=3).map(",".join))
models = st.sampled_from(["dit-s-2", "dit-xl-2", "latte", "pixart-alpha", "sora", "hunyuanvideo", "cogvideox-2b",
                          "wan2.1-1.3b", "gpt3-175b", "DIT-S-2", "nope", "", " ", "sora,sora", "dit-s-2,latte"])
gpus = st.sampled_from(["h100-sxm", "b200", "h200", "a100-40gb", "tpu-v5p", "H100-SXM", "h100", "", ",", "nope",
                        "h100-sxm,b200", "missing.yaml", "sora_compute/hardware/profiles/h200.yaml",
                        "sora_compute/hardware/profiles/catalog.yaml", "/proc/cpuinfo"])
resolutions = st.one_of(
    st.sampled_from(["480p", "720p", "1080p", "4k", "256x256", "1280x720", "1920x1080", "0x0", "-1x5", "x", "",
                     "999999999999999999999x720", "1048577x16", "16x16", "256X256", "720p,1080p"]),
    st.tuples(st.integers(-5, 5000), st.integers(-5, 5000)).map(lambda t: f"{t[0]}x{t[1]}"),
    st.text(max_size=6),
)
formats = st.sampled_from(["table", "json", "json", "csv", "markdown", "json", "table", "csv", "markdown", "xml",
                           "JSON"])
scenarios = st.one_of(st.sampled_from(["sora", "wan2.1-14b", "nope", "", "soar"]), st.sampled_from(SCENARIO_FILES))
flag = st.sampled_from
recipes = st.one_of(st.sampled_from(["open-sora-2.0", "nope", "", "open-sora-2"]), st.sampled_from(SCENARIO_FILES),
                    st.sampled_from([str(_DIR / n) for n in ("recipe.yaml", "recipe_global.json")]))
demands = st.one_of(st.sampled_from(["factorial-funds-2024", "nope", "", "Factorial-Funds-2024"]),
                    st.sampled_from(SCENARIO_FILES))

OPTIONS: dict[str, dict[str, st.SearchStrategy[str] | None]] = {
    "presets": {},
    "gpus": {},
    "show": {},
    "flops": {"--resolution": resolutions, "--frames": numbers, "--duration": numbers, "--fps": numbers,
              "--batch": numbers, "--by": st.sampled_from(["component", "kind", "module", "layer"]),
              "--matmul-only": None, "--text-tokens": numbers},
    "memory": {"--resolution": resolutions, "--frames": numbers, "--duration": numbers, "--fps": numbers,
               "--gpu": gpus, "--gpus": numbers, "--tp": numbers, "--cp": numbers, "--pp": numbers,
               "--zero": numbers, "--micro-batch": numbers,
               "--checkpointing": st.sampled_from(["none", "selective", "full", "FULL"]),
               "--attention": st.sampled_from(["fused", "materialized", "flash"]), "--ema": None, "--cfg": None,
               "--no-cfg": None, "--text-tokens": numbers,
               "--vae-decode": st.sampled_from(["official", "whole", "tiled", "chunked", "TILED", ""]),
               "--offload": st.sampled_from(["none", "free_text", "text_on_cpu", "model", "sequential", "cpu", ""]),
               "--inference-gpus": numbers},
    "estimate": {"--resolution": resolutions, "--duration": numbers, "--fps": numbers,
                 "--stage": st.sampled_from(["a", "main", "video-720p-10s", "video-480p-4s", "images-256", ""]),
                 "--gpu": gpus, "--gpus": numbers, "--mfu": numbers, "--price": numbers, "--pue": numbers,
                 "--steps": numbers, "--cfg": None, "--no-cfg": None, "--recipe": recipes},
    "plan": {"--gpu": gpus, "--gpus": numbers, "--days": numbers, "--budget": numbers, "--mfu": numbers,
             "--price": numbers, "--pue": numbers, "--precision": st.sampled_from(["bf16", "fp8", "fp4"]),
             "--layouts": None, "--global-batch": numbers,
             "--layout": st.sampled_from(["tp=2", "zero=3,pp=1", "cp_ring=4,cp_ulysses=2", "tensor=2", "tp=x", "tp=",
                                          "zero=7", "checkpointing=full", "checkpointing=FULL",
                                          "attention_kernel=nope", "micro_batch=0", "", ",", "tp=99999999"]),
             "--recipe": recipes},
    "sweep": {"--model": models, "--resolution": resolutions, "--duration": lists, "--fps": lists, "--gpu": gpus,
              "--gpus": lists, "--samples": numbers, "--steps": numbers, "--cfg": None, "--no-cfg": None,
              "--mfu": numbers},
    "demand": {"--model": models, "--gpu": gpus, "--gpus-per-video": numbers, "--mfu": numbers, "--steps": numbers,
               "--cfg": None, "--no-cfg": None, "--cache-skip": numbers, "--resolution": resolutions,
               "--duration": numbers, "--fps": numbers,
               "--ai-share": st.one_of(numbers, st.sampled_from(["TikTok=0.5,YouTube=0.1", "a=0.2", "x=1", "="])),
               "--candidates": numbers, "--peak": numbers, "--utilisation": numbers, "--growth": numbers,
               "--gpu-price": numbers, "--price": numbers, "--electricity": numbers, "--pue": numbers,
               "--scenario": scenarios},
    "recipe": {"--gpu": gpus, "--days": numbers, "--price": numbers,
               "--by": st.sampled_from(["stage", "bucket", "breakdown", "module"]), "--dump": None},
    "serve": {"--resolution": resolutions, "--frames": numbers, "--duration": numbers, "--fps": numbers,
              "--gpu": gpus, "--gpus": numbers, "--steps": numbers, "--cfg": None, "--no-cfg": None,
              "--layout": st.one_of(st.sampled_from(["cfg=2", "ulysses=2,ring=2", "ulysses=8", "ring=2,fsdp=2",
                                                     "pipefusion=2,patches=4", "pipefusion=4,patches=2", "cfg=3",
                                                     "vae-parallel", "ring=0", "ulysses=x", "tp=2", "", ",", "="]),
                                    st.text(max_size=8)),
              "--kernel": st.sampled_from(["fa2", "fa3", "cudnn", "math", "flash"]),
              "--precision": st.sampled_from(["bf16", "fp16", "fp8", "fp4"]), "--price": numbers, "--top": numbers},
    "calibrate": {"--out": st.sampled_from([str(_DIR / "cal"), "/proc/sora-compute-no", ""]),
                  "--write-record": None, "--no-write-record": None,
                  "--device": st.sampled_from(["cpu", "cuda", "tpu", ""]), "--full": None, "--threads": numbers},
    "validate": {"--kernel": st.sampled_from(["fa2", "fa3", "cudnn", "math", "flash", ""]), "--all": None,
                 "--file": st.sampled_from([*SCENARIO_FILES, str(_DIR / "absent.yaml")])},
    "report": {"--scenario": scenarios, "--out": st.sampled_from([str(_DIR / "rep"), "/proc/sora-compute-no"]),
               "--gpus": numbers, "--calibration": None, "--no-calibration": None},
}
# One token that cannot parse: calibrate and report then stop before their slow work.
UNPARSABLE = {"calibrate": ["--format", "xml"], "report": ["--gpus", "0"]}


@st.composite
def command_lines(draw: st.DrawFn, command: str) -> list[str]:
    args = [command]
    if command in ("show", "flops", "memory", "serve"):
        args.append(draw(models))
    elif command in ("estimate", "plan"):  # the scenario is optional (its default): --recipe works without one
        scenario = draw(st.one_of(scenarios, scenarios, scenarios, st.none()))
        args += [] if scenario is None else [scenario]
    elif command == "demand":
        args.append(draw(demands))
    elif command == "recipe":
        args.append(draw(recipes))
    options = OPTIONS[command]
    for name in draw(st.lists(st.sampled_from(sorted(options)), max_size=4, unique=True)) if options else []:
        strategy = options[name]
        args += [name] if strategy is None else [name, draw(strategy)]
    args += ["--format", draw(formats)]
    if command in UNPARSABLE:
        args += UNPARSABLE[command]
    extra = draw(st.sampled_from([None] * 30 + ["--bogus", "extra", "-x", "--format"]))
    if extra is not None:
        args.append(extra)
    return args


def _finite(v: object, where: str = "") -> None:
    if isinstance(v, float):
        assert math.isfinite(v), where
    elif isinstance(v, dict):
        for k, x in v.items():
            _finite(x, f"{where}.{k}")
    elif isinstance(v, list):
        for i, x in enumerate(v):
            _finite(x, f"{where}[{i}]")


def check(args: list[str]) -> None:
    r = main(*args)
    assert "Traceback" not in r.err, (args, r.err)
    if r.code == 0:
        if args[args.index("--format") + 1] == "json" and "--help" not in args:
            _finite(json.loads(r.out))
        return
    assert r.code == 2, (args, r.code, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and r.out == "", (args, r.err, r.out[:200])


@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_fuzzed_command_lines_end_cleanly(command):
    seen = SEEN.setdefault(command, set())

    @settings(max_examples=EXAMPLES[command], deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(command_lines(command))
    def run(args: list[str]) -> None:
        seen.add(tuple(args))
        check(args)

    run()


def test_fuzz_ran_at_least_1000_distinct_command_lines():
    if set(SEEN) != set(OPTIONS):
        pytest.skip("run with the fuzz tests above (all commands)")
    assert sum(len(s) for s in SEEN.values()) >= 1000, {k: len(s) for k, s in SEEN.items()}
