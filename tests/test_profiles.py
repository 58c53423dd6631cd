"""Hardware profiles: the catalog converted from gpus.yaml keeps its values and sources; a profile file path works
wherever a key does; malformed files are one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sora_compute.hardware import ProfileFileError, UnknownGPUError, gpu_catalog, gpu_names, load_gpu, load_profile
from sora_compute.hardware.profiles import load_kernel_table, profile_keys, profile_tables
from tests.clirun import main as cli_run

# The former hardware/gpus.yaml, as it was (bf16, fp8 TFLOP/s, hbm GB, TB/s, link GB/s, TDP W, $/h, MFU).
FORMER = {
    "a100-40gb": (312, None, 40, 1.555, 600, 400, 1.3, 0.40),
    "a100-80gb": (312, None, 80, 2.039, 600, 400, 1.8, 0.40),
    "h100-sxm": (989, 1979, 80, 3.35, 900, 700, 2.5, 0.40),
    "h100-pcie": (756, 1513, 80, 2.0, 600, 350, 2.0, 0.35),
    "h200": (989, 1979, 141, 4.8, 900, 700, 3.5, 0.40),
    "b200": (2250, 4500, 180, 8.0, 1800, 1000, 5.5, 0.40),
    "gb200": (2500, 5000, 186, 8.0, 1800, 1200, 6.5, 0.40),
    "mi300x": (1307.4, 2614.9, 192, 5.3, 896, 750, 2.5, 0.30),
    "mi325x": (1307.4, 2614.9, 256, 6.0, 896, 1000, 3.0, 0.30),
    "l40s": (362.05, 733, 48, 0.864, 64, 350, 1.0, 0.30),
    "tpu-v5e": (197, None, 16, 0.819, 200, None, 1.2, 0.40),
    "tpu-v5p": (459, None, 95, 2.765, 600, None, 4.2, 0.40),
}


def test_converted_profiles_keep_the_former_catalog_values():
    assert list(FORMER) == gpu_names()[:len(FORMER)]  # catalog.yaml keeps the former listing order first
    for key, want in FORMER.items():
        g = load_gpu(key)
        assert (g.bf16_tflops, g.fp8_tflops, g.hbm_gb, g.hbm_tbps, g.scale_up_gbps, g.tdp_w, g.price_usd_per_hour,
                g.default_mfu) == want
        assert g.source and load_profile(key).sources["memory"]
    assert list(gpu_catalog().columns) == ["key", "name", "vendor", "bf16_tflops", "fp8_tflops", "hbm_gb", "hbm_tbps",
                                           "scale_up_gbps", "tdp_w", "price_usd_per_hour", "default_mfu", "source"]


def test_every_profile_and_table_loads():
    for key in profile_keys():
        p = load_profile(key)
        assert p.key == key and p.peak_flops("bf16" if p.peak_tflops.bf16 else "fp32") > 0
        for t in profile_tables(p):
            assert load_profile(t.measured_on)  # efficiencies are relative to a catalog device
    assert load_kernel_table("hopper").attention


def _write(tmp_path: Path, data: dict, name: str = "gpu.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_a_profile_file_is_accepted_wherever_a_key_is(tmp_path):
    data = load_profile("h200").model_dump(mode="json", by_alias=True, exclude_none=True)
    data.update(key="my-gpu", name="My GPU")
    data["peak_tflops"]["bf16"] = 494.5  # half the H200's
    path = _write(tmp_path, data)
    assert load_gpu(path).bf16_tflops == 494.5 and load_gpu(path).key == "my-gpu"
    days = {}
    for gpu in (path, "h200"):
        for mfu in ((), ("--mfu", "0.4")):
            r = cli_run("plan", "sora", "--gpu", gpu, "--gpus", "1024", *mfu, "--format", "json")
            assert r.code == 0, r.err
            days[gpu, mfu] = json.loads(r.out)["plan"][0]["days"]
    assert days[path, ("--mfu", "0.4")] == pytest.approx(2 * days["h200", ("--mfu", "0.4")])  # same MFU, half the peak
    # predicted: the compute-bound time doubles with half the peak, the memory-bound time does not
    assert days["h200", ()] < days[path, ()] < 2 * days["h200", ()]
    for cmd in (("estimate", "sora"), ("memory", "sora"), ("sweep",)):
        r = cli_run(*cmd, "--gpu", path, "--format", "json")
        assert r.code == 0, (cmd, r.err)


@pytest.mark.parametrize(("patch", "message"), [
    ({"hbm_tbps": float("inf")}, "hbm_tbps"),
    ({"hbm_tbps": -1}, "hbm_tbps"),
    ({"colour": "red"}, "colour"),
    ({"peak_tflops": {"bf16": None}}, "peak_tflops"),
    ({"kernels": ["nope"]}, "kernel table 'nope'"),
    ({"vendor": "acme"}, "vendor"),
])
def test_a_bad_profile_file_is_one_clear_error(tmp_path, patch, message):
    data = load_profile("h100-sxm").model_dump(mode="json", by_alias=True, exclude_none=True)
    data.update(patch)
    path = _write(tmp_path, data)
    with pytest.raises((ProfileFileError, UnknownGPUError), match=message):
        load_profile(path)
    r = cli_run("memory", "sora", "--gpu", path)
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and message.split()[0] in r.err


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ProfileFileError, match="no such profile file"):
        load_profile(str(tmp_path / "absent.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("key: [unclosed")
    with pytest.raises(ProfileFileError, match="not valid YAML"):
        load_profile(str(bad))
    with pytest.raises(UnknownGPUError, match="did you mean 'h100-sxm'"):
        load_gpu("h100")
