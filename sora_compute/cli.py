"""``sora-compute``: the command-line entry point (click).

Every bad input ends in one line on stderr naming the problem, and exit status 2.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import click
import pandas as pd
from pydantic import ValidationError

from sora_compute import __version__
from sora_compute.cli_device import calibrate_device
from sora_compute.cli_support import (
    COUNT,
    FORMAT,
    MISSING,
    POSITIVE,
    Document,
    FiniteFloatParam,
    UsageError,
    friendly_errors,
    humanize,
    parse_axis,
    progress_hidden,
    run_cli,
    snap_resolution,
    split_names,
)
from sora_compute.evaluate.params import dit_params, model_params, text_encoder_params
from sora_compute.flops import FVCORE, MATMUL_ONLY, count_dit, count_text_encoder, count_vae_decode, count_vae_encode
from sora_compute.hardware import gpu_catalog
from sora_compute.planning import (
    GPT3_6ND_FLOPS,
    GPT3_PAPER_FLOPS,
    Cluster,
    InferenceSettings,
    estimate_inference,
    estimate_training,
    plan_cluster,
    plan_serving,
    resolve_scenario,
    sampling_defaults,
    with_main_stage_shape,
)
from sora_compute.planning.sensitivity import published_estimates, published_inference, sensitivity
from sora_compute.presets import all_presets, load_preset, load_yardstick, preset_names, yardstick_names
from sora_compute.specs import ModelSpec, VideoSpec
from sora_compute.units import fmt_duration_days, fmt_flops, fmt_int, fmt_multiple, fmt_sci, fmt_seconds, fmt_usd

__all__ = ["cli", "main", "UsageError"]

F = TypeVar("F", bound=Callable[..., Any])
PRESETS_WIDTH = 120  # `presets` fits a terminal this wide
PLAN_GPUS = 4096  # `plan` without --gpus or --days


def _fmt_params(n: int) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:,.2f}{unit}"
    return str(n)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sora-compute")
def cli() -> None:
    """Compute and memory planning for video diffusion models.

    \b
    Example:
      sora-compute presets
      sora-compute show sora
    """


@cli.command()
@FORMAT
@friendly_errors
def presets(fmt: str) -> None:
    """List the model presets: parameters, native video shape, tokens, sampling defaults, source.

    \b
    Example:
      sora-compute presets --format csv
    """
    rows: list[dict[str, Any]] = []
    for p in all_presets():
        counts = model_params(p.model)
        sampling = sampling_defaults(p)
        rows.append({
            "preset": p.name, "kind": "video", "dit_params": counts["dit"],
            "dit_published": p.published.get("params"),
            "vae_params": counts["vae_encoder"] + counts["vae_decoder"], "text_params": counts["text_encoder"],
            "resolution": f"{p.video.width}x{p.video.height}", "frames": p.video.num_frames, "fps": p.video.fps,
            "duration_s": p.video.duration_s, "video_tokens": p.model.latent_shape(p.video).tokens,
            "text_tokens": p.model.num_text_tokens, "steps": sampling.steps, "cfg": sampling.cfg, "source": p.source,
        })
    for name in yardstick_names():
        y = load_yardstick(name)
        rows.append({"preset": y.name, "kind": "yardstick", "dit_params": y.params, "train_tokens": y.tokens,
                     "training_flops": y.training_flops, "source": y.source})
    df = pd.DataFrame(rows, dtype=object)  # exact ints in json / csv; None where a column does not apply

    def params(v: Any) -> str:
        return _fmt_params(int(v))

    formatters: dict[str, Callable[[Any], str]] = {
        "dit_params": params, "dit_published": params, "vae_params": params, "text_params": params,
        "frames": lambda v: f"{int(v)}", "fps": lambda v: f"{v:g}", "duration_s": lambda v: f"{v:.2f}",
        "video_tokens": lambda v: f"{int(v):,}", "text_tokens": lambda v: f"{int(v)}", "steps": lambda v: f"{int(v)}",
        "cfg": lambda v: "yes" if v else "no", "train_tokens": lambda v: f"{v / 1e9:,.0f}B",
        "training_flops": fmt_flops, "source": str,
    }
    human = pd.DataFrame({c: [formatters[c](v) if c in formatters and v is not None and not pd.isna(v) else
                              (v if isinstance(v, str) else "—") for v in df[c]] for c in df.columns})
    if fmt == "table":  # fit PRESETS_WIDTH columns: the main columns, the source cut to what is left
        human = human[["preset", "kind", "dit_params", "resolution", "frames", "fps", "video_tokens", "text_tokens",
                       "steps", "cfg", "source"]]
        width = len(human.drop(columns="source").to_string(index=False).splitlines()[0]) + 2
        room = max(10, PRESETS_WIDTH - width)
        human = human.assign(source=[v if len(v) <= room else v[:room - 3] + "..." for v in human["source"]])
    doc = Document("presets", units={"*_params": "parameters (exact)", "fps": "frames per second",
                                     "duration_s": "seconds", "training_flops": "FLOPs (= 2 x MACs)"})
    doc.table("presets", df, human)
    doc.emit(fmt)


@cli.command()
@click.argument("preset")
@FORMAT
@friendly_errors
def show(preset: str, fmt: str) -> None:
    """Show a preset's spec, parameter counts (exact), tokens at its native shape and sampling defaults.

    \b
    Example:
      sora-compute show sora
    """
    p = load_preset(preset)
    counts = model_params(p.model)
    latent = p.model.latent_shape(p.video)
    v, d = p.video, p.model.dit
    sampling = sampling_defaults(p)
    spec: list[tuple[str, str]] = [
        ("preset", p.name), ("source", p.source),
        ("video", f"{v.width}x{v.height} px, {v.num_frames} frames at {v.fps:g} fps ({v.duration_s:.2f} s)"),
        ("latent", f"{latent.frames} x {latent.height} x {latent.width} (T x H x W), "
                   f"{p.model.vae.latent_channels} channels"),
        ("tokens", f"{latent.tokens:,} video ({latent.tokens_t} x {latent.tokens_h} x {latent.tokens_w}), "
                   f"{p.model.num_text_tokens} text"),
        ("dit", f"depth {d.depth}, hidden {d.hidden_size}, heads {d.num_heads}, "
                f"patch {'x'.join(map(str, d.patch_size))}, {d.conditioning}, {d.attention_layout} attention"),
    ]
    encoders = [f"{e.kind} {_fmt_params(text_encoder_params(e))} over {n} tokens"
                for e, n in zip(p.model.text_encoders, p.model.text_encoder_tokens(), strict=True)]
    if encoders:
        spec.append(("text", "; ".join(encoders)))
    ours = {"params": counts["dit"], "vae_params": counts["vae_encoder"] + counts["vae_decoder"],
            "vae_decoder_params": counts["vae_decoder"], "text_params": counts["text_encoder"]}
    published = [f"{key.replace('params', '').replace('_', ' ').strip() or 'dit'} {_fmt_params(int(x))} "
                 f"(ours {ours[key] / x - 1:+.1%})" for key, x in p.published.items() if key in ours]
    if published:
        spec.append(("published", "; ".join(published) + " (see the source)"))
    guidance = "CFG (2 evaluations per step)" if sampling.cfg else "no CFG pair (guidance-distilled or none)"
    origin = p.sampling.source if p.sampling is not None else "no published default: sora-compute's default"
    spec.append(("sampling", f"{sampling.steps} steps, {guidance} ({origin})"))
    doc = Document("show", query={"preset": p.name}, units={"params": "parameters (exact)"})
    if fmt == "table":
        doc.text("\n".join(f"{k:<13s} {val}" for k, val in spec))
        doc.text("parameters (exact):")
    else:
        doc.table("spec", pd.DataFrame(spec, columns=["field", "value"]), title="spec")
    doc.table("params", pd.DataFrame({"component": list(counts), "params": list(counts.values())}),
              pd.DataFrame({"component": list(counts), "params": [f"{n:,}" for n in counts.values()],
                            "approx": [_fmt_params(n) for n in counts.values()]}),
              title="" if fmt == "table" else "parameters (exact)")
    doc.data("preset", p.name)
    doc.data("source", p.source)
    doc.data("model", p.model.model_dump())
    doc.data("video", p.video.model_dump())
    doc.data("latent", latent.model_dump())
    doc.data("video_tokens", latent.tokens)
    doc.data("text_tokens", p.model.num_text_tokens)
    doc.data("text_encoder_tokens", list(p.model.text_encoder_tokens()))
    doc.data("published", p.published)
    doc.data("sampling", {**sampling.model_dump(include={"steps", "cfg"}), "source": origin})
    doc.emit(fmt)


def _with_text_tokens(model: ModelSpec, text_tokens: int | None) -> ModelSpec:
    """The model with ``text_tokens`` prompt tokens instead of its native length (validated)."""
    if text_tokens is None:
        return model
    return ModelSpec.model_validate({**model.model_dump(), "text_tokens": text_tokens})


TEXT_TOKENS = click.option("--text-tokens", type=click.IntRange(1, 2**31),
                           help="prompt tokens (default: the preset's text length)")
RESOLUTION_HELP = ("WIDTHxHEIGHT in pixels, or a name (480p, 720p, 1080p, 4k: snapped to the model's grid, with a "
                   "note); default: the preset's native")
FPS_HELP = "frames per second (the clip keeps its duration: frames are recounted)"


def _video_from_options(model: ModelSpec, native: VideoSpec, resolution: str | None, frames: int | None,
                        duration: float | None, fps: float | None, doc: Document | None = None) -> VideoSpec:
    """The queried video: native shape with overrides. A named resolution snaps to the model's grid (noted in
    ``doc``); a duration snaps to the nearest frame count the model accepts (e.g. 20 s at 24 fps -> 481 frames for a
    causal 4x VAE); --fps alone keeps the clip's duration; explicit --frames must fit."""
    if resolution:
        w, h, note = snap_resolution(model, resolution)
        if doc is not None:
            doc.note(note)
    else:
        w, h = native.width, native.height
    rate = fps if fps is not None else native.fps
    if frames is not None and duration is not None:
        raise UsageError("give --frames or --duration, not both")
    if duration is None and frames is None and fps is not None:
        duration = native.duration_s
    if duration is not None:
        try:
            approx = VideoSpec.from_duration(w, h, duration, rate)
        except ValidationError as e:
            raise UsageError(f"--duration/--fps: {e.errors()[0]['msg'].removeprefix('Value error, ')}") from None
        return approx.model_copy(update={"num_frames": model.snap_frames(approx.num_frames)})
    return VideoSpec(width=w, height=h, num_frames=frames if frames is not None else native.num_frames, fps=rate)


def _shape_query(video: VideoSpec) -> dict[str, Any]:
    return {"width": video.width, "height": video.height, "num_frames": video.num_frames, "fps": video.fps,
            "duration_s": video.duration_s}


@cli.command()
@click.argument("preset")
@click.option("--resolution", help=RESOLUTION_HELP)
@click.option("--frames", type=click.IntRange(1, 2**31), help="number of frames (a causal VAE takes 1 + t*k)")
@click.option("--duration", type=POSITIVE, help="seconds (snapped to a frame count the model accepts)")
@click.option("--fps", type=FiniteFloatParam(0, 1e6, min_open=True), help=FPS_HELP)
@click.option("--batch", type=click.IntRange(1, 2**31), default=1, show_default=True, help="videos per forward")
@click.option("--by", type=click.Choice(["component", "kind", "module"]), default="component", show_default=True,
              help="rows: per component, per module kind of the DiT, or per DiT module")
@click.option("--matmul-only", is_flag=True, help="count matmuls/convs/attention only (FlopCounterMode's view)")
@TEXT_TOKENS
@FORMAT
@friendly_errors
def flops(preset: str, resolution: str | None, frames: int | None, duration: float | None, fps: float | None,
          batch: int, by: str, matmul_only: bool, text_tokens: int | None, fmt: str) -> None:
    """Analytic MACs and FLOPs (= 2 x MACs) of one video through each component.

    The DiT row is ONE forward (one denoising step); training and sampling multiply it.

    \b
    Example:
      sora-compute flops sora --resolution 1080p --duration 20
      sora-compute flops dit-xl-2 --by kind
    """
    p = load_preset(preset)
    model = _with_text_tokens(p.model, text_tokens)
    doc = Document("flops", units={"macs": "multiply-accumulates", "flops": "FLOPs (= 2 x MACs)",
                                   "share": "fraction of the total MACs"})
    video = _video_from_options(model, p.video, resolution, frames, duration, fps, doc)
    conv = MATMUL_ONLY if matmul_only else FVCORE
    dit = count_dit(model, video, batch=batch, convention=conv)
    if by == "component":
        counts = [count_text_encoder(model, batch=batch, convention=conv),
                  count_vae_encode(model, video, batch=batch, convention=conv), dit,
                  count_vae_decode(model, video, batch=batch, convention=conv)]
        df = pd.DataFrame({"component": [c.component for c in counts], "macs": [c.macs for c in counts],
                           "flops": [c.flops for c in counts]})
    elif by == "kind":
        kinds = dit.by_kind()
        df = pd.DataFrame({"kind": list(kinds), "macs": list(kinds.values()),
                           "flops": [2 * v for v in kinds.values()]})
    else:
        df = dit.breakdown()[["module", "kind", "op", "macs", "flops"]]
    total = df["macs"].sum()
    df["share"] = [float(m) / float(total) if total else 0.0 for m in df["macs"]]
    doc.query = {"preset": p.name, **_shape_query(video), "video_tokens": dit.shape["tokens"],
                 "text_tokens": model.num_text_tokens, "batch": batch, "by": by,
                 "convention": "matmul-only" if matmul_only else "fvcore"}
    doc.text(f"{p.name}: {video.width}x{video.height}, {video.num_frames} frames at {video.fps:g} fps, "
             f"{dit.shape['tokens']:,} video tokens, {model.num_text_tokens} text tokens, batch {batch}; "
             "MACs, FLOPs = 2 x MACs")
    human = df.assign(macs=[f"{float(m):.4g}" for m in df["macs"]], flops=[f"{float(f):.4g}" for f in df["flops"]],
                      share=[f"{x:.1%}" for x in df["share"]])
    doc.table("rows", df, human)
    doc.emit(fmt)


@cli.command()
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=None,
              help="without --device: folder for the per-module table (CSV, markdown) and the record "
                   "[default: reports/calibration]; with --device: the measured profile file "
                   "[default: sora_compute/hardware/measured/<device>-<date>.yaml]")
@click.option("--write-record/--no-write-record", default=False,
              help="also update the calibration record shipped in the package (sora_compute/data)")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None,
              help="measure this device's kernels (GEMM sweep, SDPA per backend, conv3d, bandwidth) into a "
                   "hardware profile instead of profiling FLOPs")
@click.option("--full", is_flag=True, help="with --device: more shapes, longer repeats, attention backward")
@click.option("--threads", type=click.IntRange(1, 1024), default=1, show_default=True,
              help="with --device: torch.set_num_threads for every measurement (1 repeats best on a shared machine)")
@FORMAT
@friendly_errors
def calibrate(out_path: Path | None, write_record: bool, device: str | None, full: bool, threads: int,
              fmt: str) -> None:
    """Profile the reference models with fvcore and FlopCounterMode and compare with the analytic counts
    (about 10 s: measured 9.3 s on 2 idle CPU cores; a progress bar on a terminal). With --device, measure the
    device's kernels into a hardware profile the time model uses (about 40 s: measured 34-51 s on 2 shared CPU cores;
    --full 586 s).

    \b
    Example:
      sora-compute calibrate --out reports/calibration
      sora-compute calibrate --device cpu --out my_cpu.yaml
    """
    if device is not None:
        calibrate_device(device, out_path, full, threads, fmt)
        return
    if full:
        raise UsageError("--full applies to --device calibration only")
    out_dir = out_path if out_path is not None else Path("reports/calibration")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out: {str(out_dir)!r} is a file; give a folder")
    from sora_compute.calibration import profile as cal  # imports fvcore and torch.jit: only when asked

    cases = cal.default_cases()
    out_dir.mkdir(parents=True, exist_ok=True)  # fail on an unwritable folder before profiling
    with click.progressbar(length=len(cases), label="profiling", file=sys.stderr, hidden=progress_hidden()) as bar:
        result = cal.calibrate(cases, progress=lambda name: bar.update(1))
    record_path = Path(str(resources.files("sora_compute").joinpath(cal.RECORD_PATH))) if write_record else None
    if record_path is not None:
        record_path.parent.mkdir(parents=True, exist_ok=True)
    written = cal.write_outputs(result, out_dir, record_path)
    s = result.summary()
    rec = result.record()
    odd = result.unexpected_ops()
    doc = Document("calibrate", query={"out": str(out_dir)}, units={"*_rel_err": "relative error per module"})
    doc.table("summary", s, s.assign(worst_fvcore_rel_err=s["worst_fvcore_rel_err"].map("{:.2e}".format),
                                     worst_flopcounter_rel_err=s["worst_flopcounter_rel_err"].map("{:.2e}".format)))
    doc.text(f"worst per-module relative error: fvcore {rec['worst_rel_err']['fvcore']:.2e}, "
             f"FlopCounterMode (meta) {rec['worst_rel_err']['flopcounter']:.2e}; correction factors: none")
    doc.text(f"ops fvcore skipped beyond the elementwise ones: {odd if odd else 'none'}")
    doc.text("wrote " + ", ".join(str(p) for p in written))
    doc.data("worst_rel_err", rec["worst_rel_err"])
    doc.data("written", [str(p) for p in written])
    doc.emit(fmt)


@cli.command()
@FORMAT
@friendly_errors
def gpus(fmt: str) -> None:
    """List the GPU catalog: dense BF16/FP8 TFLOP/s, memory, bandwidth, power, assumed price, source.

    \b
    Example:
      sora-compute gpus --format csv
    """
    df = gpu_catalog()
    human = humanize(df)
    if fmt == "table":
        human = human[["key", "bf16_tflops", "fp8_tflops", "hbm_gb", "hbm_tbps", "scale_up_gbps", "tdp_w",
                       "price_usd_per_hour", "default_mfu"]]
    doc = Document("gpus", units={"*_tflops": "dense TFLOP/s", "hbm_gb": "GB (10^9 bytes)", "hbm_tbps": "TB/s",
                                  "scale_up_gbps": "GB/s", "tdp_w": "W", "price_usd_per_hour": "USD per GPU-hour"})
    doc.table("gpus", df, human)
    doc.emit(fmt)


@cli.command()
@click.option("--kernel", "kernel", type=click.Choice(["fa2", "fa3", "cudnn", "math"]), default="fa2",
              show_default=True, help="attention kernel the predictions assume")
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path),
              help="a validation file in the packaged schema (default: sora_compute/data/validation.yaml)")
@click.option("--all", "show_all", is_flag=True, help="also list the entries not compared, with the reason")
@FORMAT
@friendly_errors
def validate(kernel: str, path: Path | None, show_all: bool, fmt: str) -> None:
    """Predicted time against published timings (never fitted): each entry of the validation file next to what the
    time model predicts for its model, GPU, shape and sampling, the error of each and the single-GPU mean.

    \b
    Example:
      sora-compute validate --kernel fa3 --format csv
    """
    from sora_compute.planning.validate import validate as run_validation
    from sora_compute.planning.validation import load_validation

    run = run_validation(load_validation(path) if path is not None else None, kernel)
    t = run.table
    shown = t if show_all else t[t["status"] == "compared"]
    doc = Document("validate", units={"published_s": "s (wall, as published)", "predicted_s": "s", "mfu_s": "s",
                                      "error": "predicted / published - 1", "mfu_error": "mfu_s / published - 1"})
    doc.query = {"kernel": kernel, "file": str(path) if path is not None else "packaged"}
    counts = t["status"].value_counts()
    single = run.compared
    doc.text(f"{len(t):,} published figures: " + ", ".join(f"{n:,} {k}" for k, n in counts.items()) + ".")
    if len(single):
        worst = single.iloc[int(single["error"].abs().to_numpy().argmax())]
        doc.text(f"Single-GPU inference, {len(single):,} compared: mean |error| {run.mean_abs_error:.1%}, mean "
                 f"error {run.mean_error:+.1%} (attention kernel {kernel}); worst {worst['id']} at "
                 f"{worst['error']:+.0%}. At each GPU's planning MFU instead: mean |error| "
                 f"{run.mfu_mean_abs_error:.1%}. Published figures are reported, never fitted.")
    human = pd.DataFrame({"id": shown["id"], "gpu": shown["gpu"], "gpus": shown["gpus"], "scope": shown["scope"],
                          "published": [fmt_seconds(x) for x in shown["published_s"]],
                          "predicted": [fmt_seconds(x) for x in shown["predicted_s"]],
                          "error": [MISSING if x != x else f"{x:+.0%}" for x in shown["error"]],
                          "at planning MFU": [MISSING if x != x else f"{x:+.0%}" for x in shown["mfu_error"]],
                          "note": shown["note"]})
    doc.table("entries", shown.drop(columns=["source"]), human)
    doc.emit(fmt)


SCENARIO_HELP = "a scenario from scenarios.yaml, or a YAML/JSON scenario file (see the README)"


def _stage_rows(est: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    st = est.by_stage()
    human = pd.DataFrame({"stage": st["stage"], "samples": [fmt_sci(x) for x in st["samples"]],
                          "model FLOPs": [fmt_sci(x) for x in st["model_flops"]],
                          "x GPT-3": [fmt_multiple(x) for x in st["gpt3_multiple"]]})
    return st, human


@cli.command()
@click.argument("scenario", default="sora")
@click.option("--resolution", help="what-if: the reshaped stage and the inference clip at WIDTHxHEIGHT (or 720p, ...)")
@click.option("--duration", type=POSITIVE, help="what-if: clips of this many seconds (stage and inference clip)")
@click.option("--fps", type=FiniteFloatParam(0, 1e6, min_open=True),
              help="what-if: this frame rate (stage and inference clip keep their seconds)")
@click.option("--stage", help="the stage a what-if reshapes (default: the one with the most model FLOPs)")
@click.option("--gpu", "gpu_list", default="h100-sxm,h200,b200", show_default=True,
              help="comma-separated GPU types for the cluster plans (see `sora-compute gpus`)")
@click.option("--gpus", "count", type=COUNT, default=4096, show_default=True, help="GPUs per cluster")
@click.option("--mfu", type=FiniteFloatParam(0, 1, min_open=True), help="model-FLOPs utilisation (default: per GPU)")
@click.option("--price", type=POSITIVE, help="USD per GPU-hour, for training and serving (default: catalog)")
@click.option("--pue", type=FiniteFloatParam(1), default=1.2, show_default=True, help="datacentre PUE")
@click.option("--steps", type=COUNT, help="sampling steps (default: the preset's published default, else 50)")
@click.option("--cfg/--no-cfg", default=None, help="classifier-free guidance pair (default: the preset's own)")
@FORMAT
@friendly_errors
def estimate(scenario: str, resolution: str | None, duration: float | None, fps: float | None, stage: str | None,
             gpu_list: str, count: int, mfu: float | None, price: float | None, pue: float, steps: int | None,
             cfg: bool | None, fmt: str) -> None:
    """Capacity estimate of a training scenario (a name from scenarios.yaml, or a YAML/JSON file): training
    compute and its GPT-3 multiple, cluster time/cost/energy, inference cost per video and per minute, and
    what moves the estimate. --resolution/--duration/--fps reshape one stage (--stage; default the one with
    the most model FLOPs) and the inference clip.

    \b
    Example:
      sora-compute estimate sora --gpu h100-sxm,b200 --gpus 4096 --mfu 0.4
      sora-compute estimate sora --resolution 1080p --duration 20 --no-cfg --steps 8
      sora-compute estimate my_scenario.yaml
    """
    sc = resolve_scenario(scenario)
    gpu_names = split_names(gpu_list, "--gpu")
    doc = Document("estimate", units={"*_flops": "FLOPs (= 2 x MACs)",
                                      "gpt3_multiple": f"model FLOPs / {fmt_sci(GPT3_PAPER_FLOPS)}",
                                      "days": "days", "gpu_hours": "GPU-hours", "cost_usd": "USD",
                                      "energy_mwh": "MWh", "latency_s": "seconds", "*_usd": "USD"},
                   assumptions=dict(sc.assumptions))
    w = h = None
    if resolution:
        w, h, note = snap_resolution(sc.model, resolution)
        doc.note(note)
    if stage is not None and resolution is None and duration is None and fps is None:
        raise UsageError("--stage names the stage that --resolution/--duration/--fps reshape: give one of them")
    reshaped = None
    if resolution or duration is not None or fps is not None:
        reshaped = stage if stage is not None else estimate_training(sc).main_stage
        sc = with_main_stage_shape(sc, w, h, duration, fps, stage=reshaped)
    est = estimate_training(sc)
    clusters = [Cluster(gpu=g, count=count, mfu=mfu, price_usd_per_hour=price, pue=pue) for g in gpu_names]
    plans = [plan_cluster(est, c) for c in clusters]
    preset = load_preset(sc.model.name) if sc.model.name in preset_names() else None
    native = preset.video if preset is not None else next(
        s for s in sc.stages if s.name == est.main_stage).buckets[0].video(sc.model)
    video = _video_from_options(sc.model, native, f"{w}x{h}" if w else None, None, duration, fps)
    default = sampling_defaults(sc.model)
    settings = InferenceSettings(steps=steps if steps is not None else default.steps,
                                 cfg=cfg if cfg is not None else default.cfg)
    inf = estimate_inference(sc.model, video, settings)
    serving = [plan_serving(inf, c.gpu, gpus_per_video=1, mfu=mfu, price_usd_per_hour=price) for c in clusters]
    sens = sensitivity(sc)
    published = published_estimates(est) if sc.model.name == "sora" else None
    doc.query = {"scenario": sc.name, "reshaped_stage": reshaped, "resolution": resolution, "duration_s": duration,
                 "fps": fps, "gpus": count, "mfu": mfu, "price_usd_per_gpu_hour": price, "pue": pue,
                 "steps": settings.steps, "cfg": settings.cfg}
    m = sc.model
    doc.text(f"== {sc.name}: {m.name} preset, DiT {dit_params(m.dit) / 1e9:.2f}B parameters "
             f"({m.dit.depth} x {m.dit.hidden_size}), {m.dit.conditioning}, {m.dit.attention_layout} attention")
    if reshaped is not None:
        b = next(s for s in sc.stages if s.name == reshaped).buckets
        shapes = ", ".join(dict.fromkeys(f"{x.width}x{x.height} {x.video(m).duration_s:.3g} s at {x.fps:g} fps"
                                         for x in b))
        doc.text(f"what-if: stage '{reshaped}' reshaped to {shapes}; the inference clip likewise")
    doc.text("\nTraining compute (FLOPs = 2 x MACs; model FLOPs = 3 x DiT forward per sample):")
    st, st_human = _stage_rows(est)
    doc.table("stages", st, st_human)
    doc.text(f"  total           {fmt_flops(est.model_flops)} = {fmt_multiple(est.gpt3_multiple)} GPT-3 175B "
             f"({fmt_sci(GPT3_PAPER_FLOPS)}, paper); {fmt_multiple(est.gpt3_multiple_6nd)} GPT-3 by 6·N·D "
             f"({fmt_sci(GPT3_6ND_FLOPS)})\n"
             f"  hardware FLOPs  {fmt_flops(est.hardware_flops)} (with {sc.checkpointing} activation recomputation)\n"
             f"  6·N·D reading   {fmt_flops(est.six_nd_flops)} = {fmt_multiple(est.six_nd_multiple)} GPT-3: what a "
             f"parameter-count estimate of the same plan says (no attention term)")
    doc.data("scenario", sc.name)
    doc.data("training", est.summary())
    doc.text(f"\nCluster plans ({count:,} GPUs each; time = model FLOPs / (GPUs x peak BF16 x MFU)):")
    doc.table("clusters", pd.DataFrame([p.summary() for p in plans]), pd.DataFrame({
        "gpu": [p.cluster.gpu for p in plans], "MFU": [f"{p.cluster.effective_mfu:.0%}" for p in plans],
        "wall clock": [fmt_duration_days(p.days) for p in plans], "GPU-days": [fmt_int(p.gpu_days) for p in plans],
        "$/GPU-hour": [fmt_usd(p.cluster.price) for p in plans],
        "cost": [fmt_usd(p.cost_usd) for p in plans], "energy": [f"{p.energy_mwh:,.0f} MWh" for p in plans]}))
    v = inf.video
    guidance = "CFG pair" if settings.cfg else "no CFG pair"
    doc.text(f"\nInference, one {v.width}x{v.height} clip of {v.num_frames} frames at {v.fps:g} fps "
             f"({v.duration_s:.3g} s), {settings.steps} steps, {guidance}:")
    comp = inf.to_frame()
    doc.text("  " + ", ".join(f"{c} {fmt_sci(float(f))} ({sh:.0%})"
                              for c, f, sh in zip(comp["component"], comp["flops"], comp["share"], strict=True))
             + f"\n  {fmt_flops(inf.flops_per_video)} per video, {fmt_flops(inf.flops_per_minute)} per minute of "
               f"video, {fmt_flops(inf.flops_per_1k_videos)} per 1k videos")
    doc.table("inference_components", comp, humanize(comp).assign(share=[f"{x:.0%}" for x in comp["share"]]),
              title="" if fmt == "table" else "inference FLOPs by component")
    doc.data("inference", {"flops_per_video": inf.flops_per_video, "flops_per_minute": inf.flops_per_minute,
                           "flops_per_1k_videos": inf.flops_per_1k_videos, "video": _shape_query(v),
                           "steps": settings.steps, "cfg": settings.cfg})
    doc.table("serving", pd.DataFrame([x.summary() for x in serving]), pd.DataFrame({
        "gpu": [x.gpu.key for x in serving], "latency (1 GPU)": [f"{x.latency_s:,.0f} s" for x in serving],
        "roofline bound": [f"{x.latency_lower_bound_s:,.0f} s" for x in serving],
        "video min / GPU-hour": [f"{x.video_minutes_per_gpu_hour:.3g}" for x in serving],
        "$ / video minute": [fmt_usd(x.cost_per_video_minute_usd) for x in serving]}))
    doc.text(f"\nSensitivity of the GPT-3 multiple (base {fmt_multiple(est.gpt3_multiple)}):")

    def arrow(labels: pd.Series, values: pd.Series) -> list[str]:
        return [f"{a} -> {fmt_multiple(b)}" for a, b in zip(labels, values, strict=True)]

    doc.table("sensitivity", sens, pd.DataFrame({"assumption": sens["assumption"], "base": sens["base"],
                                                 "low": arrow(sens["low"], sens["multiple_low"]),
                                                 "high": arrow(sens["high"], sens["multiple_high"])}))
    if published is not None:
        pub = published.drop(columns=["reading"])
        doc.text("\nPublished Sora estimates under this model:")
        doc.text("\n".join(f"  {r['source']}: {fmt_flops(float(r['flops']))} = {fmt_multiple(r['gpt3_multiple'])} "
                           f"GPT-3. {r['reading']}" for r in published.to_dict(orient="records")))
        doc.table("published", published, pd.DataFrame({
            "source": pub["source"], "FLOPs": [fmt_sci(x) for x in pub["flops"]],
            "x GPT-3": [fmt_multiple(x) for x in pub["gpt3_multiple"]],
            "ratio to ours": [fmt_multiple(x) for x in pub["ratio_to_ours"]]}), title="" if fmt == "table" else
            "published Sora estimates")
        pi = published_inference()
        doc.text("Published Sora inference estimate under this model:\n" + "\n".join(
            f"  {r['source']}: {r['video_minutes_per_h100_hour']:.3g} video-minutes per H100-hour "
            f"({fmt_sci(float(r['flops_per_video_minute']))} FLOPs per minute). {r['reading']}"
            for r in pi.to_dict(orient="records")))
        doc.table("published_inference", pi, humanize(pi), title="" if fmt == "table" else
                  "published inference estimate")
    if fmt == "table":  # the prose already carries these tables' numbers
        doc.blocks = [b for b in doc.blocks if b.name not in ("inference_components", "published",
                                                              "published_inference")]
    doc.emit(fmt)


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


@cli.command()
@click.argument("preset", default="sora")
@click.option("--resolution", help=RESOLUTION_HELP)
@click.option("--frames", type=click.IntRange(1, 2**31), help="number of frames (a causal VAE takes 1 + t*k)")
@click.option("--duration", type=POSITIVE, help="seconds (snapped to a frame count the model accepts)")
@click.option("--fps", type=FiniteFloatParam(0, 1e6, min_open=True), help=FPS_HELP)
@click.option("--gpu", default="h100-sxm", show_default=True, help="GPU type (see `sora-compute gpus`)")
@click.option("--gpus", "count", type=COUNT, default=1024, show_default=True,
              help="GPUs in the training job (DP = GPUs / (TP x CP x PP))")
@click.option("--tp", type=click.IntRange(1, 2**31), help="tensor parallel size (with --cp/--pp: no search)")
@click.option("--cp", type=click.IntRange(1, 2**31), help="context parallel size")
@click.option("--pp", type=click.IntRange(1, 2**31), help="pipeline parallel size")
@click.option("--zero", type=click.IntRange(0, 3), default=3, show_default=True, help="ZeRO stage")
@click.option("--micro-batch", type=click.IntRange(1, 2**31), default=1, show_default=True)
@click.option("--checkpointing", type=click.Choice(["none", "selective", "full"]), default="full", show_default=True)
@click.option("--attention", type=click.Choice(["fused", "materialized"]), default="fused", show_default=True)
@click.option("--ema/--no-ema", default=False, show_default=True, help="keep an fp32 EMA copy")
@click.option("--cfg/--no-cfg", default=None, help="inference: the CFG pair in one batch (default: the preset's own)")
@TEXT_TOKENS
@FORMAT
@friendly_errors
def memory(preset: str, resolution: str | None, frames: int | None, duration: float | None, fps: float | None,
           gpu: str, count: int, tp: int | None, cp: int | None, pp: int | None, zero: int, micro_batch: int,
           checkpointing: str, attention: str, ema: bool, cfg: bool | None, text_tokens: int | None,
           fmt: str) -> None:
    """Memory per GPU: training (the smallest TP x CP x PP layout that fits, or the one given) and inference
    (text encoder, DiT with the CFG pair when the model samples with one, VAE decode, with a tiling that fits when
    untiled does not).

    \b
    Example:
      sora-compute memory sora --gpu h100-sxm --gpus 4096
      sora-compute memory sora --resolution 1920x1088 --duration 60 --tp 8 --cp 8 --pp 1
    """
    from sora_compute.memory import planner as mp

    p = load_preset(preset)
    model = _with_text_tokens(p.model, text_tokens)
    doc = Document("memory", units={"*_bytes": "bytes", "GiB": "GiB (2^30 bytes)"})
    video = _video_from_options(model, p.video, resolution, frames, duration, fps, doc)
    model.latent_shape(video)  # validate the shape first: one clear error
    use_cfg = cfg if cfg is not None else sampling_defaults(p).cfg
    precision = mp.PrecisionPolicy(ema=ema)
    ck, ker = checkpointing, attention
    searched = None
    if tp is None and cp is None and pp is None:
        searched = mp.search_layouts(model, video, gpu, count, precision, ck, ker,  # type: ignore[arg-type]
                                     zero_stages=(zero,), micro_batch=micro_batch)
        fitting = searched[searched["fits"]]
        row = (fitting if len(fitting) else searched).iloc[0]
        tp_, cp_, pp_ = int(row["tp"]), int(row["cp"]), int(row["pp"])
    else:
        tp_, cp_, pp_ = tp or 1, cp or 1, pp or 1
    mpar = tp_ * cp_ * pp_
    if count % mpar:
        raise UsageError(f"--gpus {count} is not divisible by TP x CP x PP = {mpar}")
    layout = mp.ParallelLayout.model_validate({"dp": count // mpar, "tp": tp_, "cp": cp_, "pp": pp_, "zero": zero,
                                               "micro_batch": micro_batch})
    train = mp.training_memory(model, video, layout, gpu, precision, ck, ker)  # type: ignore[arg-type]
    cfg_batch = 2 if use_cfg else 1
    stages = {s: mp.inference_memory(model, video, gpu, s, cfg_batch=cfg_batch, kernel=ker)  # type: ignore[arg-type]
              for s in ("text", "dit", "vae_decode")}
    tile, tiled = (None, None)
    if not stages["vae_decode"].fits:
        try:
            tile, tiled = mp.recommend_vae_tiling(model, video, gpu)
        except ValueError as e:
            tiled = None
            doc.note(str(e))
    v = video
    doc.query = {"preset": p.name, **_shape_query(v), "video_tokens": model.latent_shape(v).tokens, "gpu": gpu,
                 "gpus": count, "zero": zero, "micro_batch": micro_batch, "checkpointing": ck, "attention": ker,
                 "ema": ema, "cfg": use_cfg}
    doc.assumptions = {"weights": "bf16 weights and activations, fp32 master weights and AdamW moments",
                       "usable memory": "92% of the catalog's HBM (CUDA context, buffers, fragmentation)"}
    doc.text(f"== {p.name}: {v.width}x{v.height}, {v.num_frames} frames ({v.duration_s:.1f} s), "
             f"{model.latent_shape(v).tokens:,} video tokens; {gpu}, {count:,} GPUs; bf16 weights/activations, "
             f"fp32 master + AdamW moments, {ck} checkpointing, {ker} attention")
    if searched is not None:
        n_fit = int(searched["fits"].sum())
        doc.text(f"\nLayouts considered: {len(searched)} ({n_fit} fit); smallest model-parallel first:")
        head = searched.head(8)[["layout", "peak_GiB", "fits"]]
        doc.table("layouts_considered", searched, head.assign(peak_GiB=head["peak_GiB"].map("{:,.1f}".format),
                                                              fits=head["fits"].map({True: "yes", False: "no"})))
    verdict = "FITS" if train.fits else "DOES NOT FIT"
    doc.text(f"\nTraining memory per GPU, {layout.label()}: {_gib(train.peak_bytes)} of "
             f"{_gib(train.capacity_bytes)} usable -> {verdict}")
    df = train.to_frame()
    doc.table("training_components", df, df.assign(GiB=df["GiB"].map("{:,.2f}".format))[["component", "GiB"]])
    doc.data("layout", layout.model_dump())
    doc.data("training", {**train.summary(), "peak_bytes": train.peak_bytes, "components_bytes": train.components,
                          "transient_bytes": train.transient})
    for n in train.notes:
        doc.text(f"  note: {n}")
    if train.fits:
        longest = mp.max_feasible(model, video, "num_frames", layout, gpu, precision, ck, ker)  # type: ignore[arg-type]
        batch = mp.max_feasible(model, video, "micro_batch", layout, gpu, precision, ck, ker)  # type: ignore[arg-type]
        if isinstance(longest, VideoSpec):
            doc.text(f"  largest that fits this layout: {longest.num_frames} frames "
                     f"({longest.duration_s:.1f} s) at this resolution; micro-batch {batch}")
    doc.text(f"\nInference memory on one {gpu} (each stage alone; weights bf16; "
             f"{'CFG pair batched' if use_cfg else 'no CFG pair'}):")
    inf_rows = pd.DataFrame([{"stage": s, **m.summary(), "peak_bytes": m.peak_bytes} for s, m in stages.items()])
    doc.table("inference_stages", inf_rows, pd.DataFrame({"stage": list(stages),
                                                   "peak": [_gib(m.peak_bytes) for m in stages.values()],
                                                   "fits": ["fits" if m.fits else "does NOT fit"
                                                            for m in stages.values()]}))
    doc.data("inference", {s: {**m.summary(), "peak_bytes": m.peak_bytes, "components_bytes": m.components,
                               "transient_bytes": m.transient} for s, m in stages.items()})
    doc.data("vae_tile_latent", tile)
    if tile is not None and tiled is not None:
        doc.text(f"  VAE decode untiled needs {_gib(stages['vae_decode'].peak_bytes)}: decode in latent tiles of "
                 f"{tile[0]} x {tile[1]} x {tile[2]} (frames x height x width; "
                 f"{tile[1] * model.vae.spatial_compression} x {tile[2] * model.vae.spatial_compression} px) -> "
                 f"{_gib(tiled.peak_bytes)} ({', '.join(tiled.notes)})")
    if not stages["dit"].fits:
        need = stages["dit"].peak_bytes / stages["dit"].capacity_bytes
        doc.text(f"  the DiT forward needs {need:.1f}x one GPU: split the sequence (context parallel) over "
                 f">= {math.ceil(need)} GPUs")
    doc.emit(fmt)


@cli.command()
@click.option("--scenario", default="sora", show_default=True, help=SCENARIO_HELP)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="default: reports/SCENARIO")
@click.option("--gpus", "count", type=COUNT, default=4096, show_default=True, help="GPUs per cluster")
@click.option("--calibration/--no-calibration", default=True, show_default=True,
              help="include the calibration figure (profiles the reference models: about 10 s more)")
@FORMAT
@friendly_errors
def report(scenario: str, out_dir: Path | None, count: int, calibration: bool, fmt: str) -> None:
    """Write a capacity-planning report (markdown + self-contained HTML + PNG figures): about 12 s with the
    calibration figure, 2 s without (measured on 2 idle CPU cores). A progress bar shows on a terminal.

    \b
    Example:
      sora-compute report --scenario sora --out reports/sora
    """
    from sora_compute.report import write_report

    sc = resolve_scenario(scenario)
    out = out_dir or Path("reports") / sc.name
    out.mkdir(parents=True, exist_ok=True)  # fail on an unwritable folder before any output
    steps = 10 if calibration else 9
    with click.progressbar(length=steps, label="report", file=sys.stderr, hidden=progress_hidden()) as bar:
        written = write_report(sc, out, gpus=count, progress=lambda _: bar.update(1), calibration=calibration)
    doc = Document("report", query={"scenario": sc.name, "out": str(out), "gpus": count})
    doc.text("wrote " + ", ".join(str(p) for p in written))
    doc.table("written", pd.DataFrame({"file": [str(p) for p in written]}))
    if fmt == "table":
        doc.blocks = doc.blocks[:1]
    doc.emit(fmt)


@cli.command()
@click.argument("scenario", default="sora")
@click.option("--gpu", default="h100-sxm", show_default=True, help="GPU type")
@click.option("--gpus", "count", type=COUNT, help=f"GPUs: how long does it take? (default {PLAN_GPUS})")
@click.option("--days", type=POSITIVE, help="deadline: how many GPUs are needed? (not with --gpus or --budget)")
@click.option("--budget", type=POSITIVE, help="USD: how far does it go on --gpus GPUs?")
@click.option("--mfu", type=FiniteFloatParam(0, 1, min_open=True), help="model-FLOPs utilisation (default: per GPU)")
@click.option("--price", type=POSITIVE, help="USD per GPU-hour (default: catalog)")
@click.option("--pue", type=FiniteFloatParam(1), default=1.2, show_default=True)
@click.option("--precision", type=click.Choice(["bf16", "fp8"]), default="bf16", show_default=True)
@FORMAT
@friendly_errors
def plan(scenario: str, gpu: str, count: int | None, days: float | None, budget: float | None, mfu: float | None,
         price: float | None, pue: float, precision: str, fmt: str) -> None:
    """Cluster plan for a training scenario (a name, or a YAML/JSON file): wall-clock days, GPU-hours, cost and
    energy; or the inverse (GPUs needed to finish in --days; what a --budget buys on --gpus GPUs).

    \b
    Example:
      sora-compute plan sora --gpu b200 --days 30
      sora-compute plan sora --gpu h100-sxm --gpus 4096 --budget 5e6
    """
    from sora_compute.planning import budget_plan, gpus_for_days

    if days is not None and count is not None:
        raise UsageError("--days asks how many GPUs finish in time; --gpus fixes the GPUs: give one, not both")
    if days is not None and budget is not None:
        raise UsageError("--days and --budget are two different questions: give one, not both")
    sc = resolve_scenario(scenario)
    est = estimate_training(sc)
    if days is not None:
        count = gpus_for_days(est, gpu, days, mfu, precision)  # type: ignore[arg-type]
    if count is None:
        count = PLAN_GPUS
    cluster = Cluster(gpu=gpu, count=count, mfu=mfu, price_usd_per_hour=price, pue=pue, precision=precision)
    plan_ = plan_cluster(est, cluster)
    row = plan_.summary()
    b = budget_plan(est, cluster, budget) if budget is not None else None
    if b is not None:
        row.update(b)
    if days is not None:
        row["deadline_days"] = days
    doc = Document("plan", query={"scenario": sc.name, "gpu": gpu, "gpus": count, "days": days, "budget_usd": budget,
                                  "mfu": mfu, "price_usd_per_gpu_hour": price, "pue": pue, "precision": precision},
                   units={"*_flops": "FLOPs (= 2 x MACs)", "days": "days", "gpu_hours": "GPU-hours",
                          "cost_usd": "USD", "energy_mwh": "MWh"}, assumptions=dict(sc.assumptions))
    lines = [f"{sc.name}: {fmt_sci(est.model_flops)} model FLOPs ({fmt_multiple(est.gpt3_multiple)} GPT-3), "
             f"{fmt_sci(est.hardware_flops)} hardware FLOPs"]
    if days is not None:
        lines.append(f"  to finish in {days:g} days: {count:,} x {gpu} at MFU {cluster.effective_mfu:.0%} "
                     f"(fewest that do)")
    lines.append(f"  {count:,} x {gpu} ({precision}, MFU {cluster.effective_mfu:.0%}, HFU {plan_.hfu:.0%}): "
                 f"{fmt_duration_days(plan_.days)}, {fmt_int(plan_.gpu_hours)} GPU-hours, {fmt_usd(plan_.cost_usd)}, "
                 f"{plan_.energy_mwh:,.0f} MWh (PUE {pue:g})")
    if b is not None and budget is not None:
        lines.append(f"  {fmt_usd(budget)} buys {fmt_duration_days(b['affordable_days'])} on this cluster: "
                     f"{b['fraction_completed']:.0%} of the run "
                     f"(the whole run costs {fmt_usd(b['budget_needed_usd'])})")
    if fmt in ("table", "markdown"):
        doc.text("\n".join(lines))
    if fmt != "table":
        doc.table("plan", pd.DataFrame([row]))
    doc.emit(fmt)


@cli.command()
@click.option("--model", "models", default="sora", show_default=True, help="comma-separated presets")
@click.option("--resolution", "resolutions", default="480p,720p,1080p", show_default=True,
              help="comma-separated WIDTHxHEIGHT or names (480p, 720p, 1080p, ...), snapped to each model's grid")
@click.option("--duration", "durations", default="5,10,30,60", show_default=True,
              help="seconds: comma-separated, or ranges START..STOP:STEP (5..60:5)")
@click.option("--fps", "fps_list", help="frames per second, list or range (default: each model's native fps)")
@click.option("--gpu", "gpu_list", default="h100-sxm", show_default=True, help="comma-separated GPU types")
@click.option("--gpus", "counts", default="4096", show_default=True,
              help="cluster sizes: comma-separated, or ranges (1024..8192:1024)")
@click.option("--samples", type=POSITIVE, default=1e7, show_default=True, help="training clips per point")
@click.option("--steps", type=COUNT, help="sampling steps (default: each preset's published default, else 50)")
@click.option("--cfg/--no-cfg", default=None, help="classifier-free guidance pair (default: each preset's own)")
@click.option("--mfu", type=FiniteFloatParam(0, 1, min_open=True), help="model-FLOPs utilisation (default: per GPU)")
@FORMAT
@friendly_errors
def sweep(models: str, resolutions: str, durations: str, fps_list: str | None, gpu_list: str, counts: str,
          samples: float, steps: int | None, cfg: bool | None, mfu: float | None, fmt: str) -> None:
    """Grid of what-ifs, one row per point: tokens, FLOPs per video, training FLOPs and GPT-3 multiple for
    --samples clips, days/cost on each cluster, inference latency. Sizes that a model cannot take are
    rounded to the nearest multiple of its compression x patch (e.g. 1080 -> 1088), with a note.

    \b
    Example:
      sora-compute sweep --resolution 480p,720p,1080p --duration 5..60:5 --gpu h100-sxm,b200
    """
    from sora_compute.planning import sweep as run_sweep

    names = split_names(models, "--model")
    gpu_names = split_names(gpu_list, "--gpu")
    res_texts = split_names(resolutions, "--resolution")
    dur = parse_axis(durations, "--duration")
    fps_values = parse_axis(fps_list, "--fps") if fps_list is not None else None
    n = parse_axis(counts, "--gpus", integer=True)
    points = len(names) * len(res_texts) * len(dur) * len(fps_values or [1]) * len(gpu_names) * len(n)
    if points > 1_000_000:
        raise UsageError(f"the grid has {points:,} points; at most 1,000,000")
    doc = Document("sweep", units={"*_flops": "FLOPs (= 2 x MACs)", "duration_s": "seconds", "train_days": "days",
                                   "cost_usd": "USD", "energy_mwh": "MWh", "latency_s_1gpu": "seconds"})
    frames = []
    for name in names:
        model = load_preset(name).model
        res = []
        for r in res_texts:
            w, h, note = snap_resolution(model, r, snap_explicit=True)
            doc.note(note)
            res.append((w, h))
        frames.append(run_sweep([name], list(dict.fromkeys(res)), dur, fps=fps_values, gpus=gpu_names,
                                gpu_counts=n, samples=samples, steps=steps, cfg=cfg, mfu=mfu))
    df = pd.concat(frames, ignore_index=True)
    doc.query = {"models": names, "resolutions": res_texts, "durations_s": dur, "fps": fps_values,
                 "gpus": gpu_names, "gpu_counts": n, "samples": samples, "steps": steps, "cfg": cfg, "mfu": mfu}
    human = pd.DataFrame({
        "model": df["model"], "resolution": df["width"].astype(str) + "x" + df["height"].astype(str),
        "duration": df["duration_s"].map("{:.1f} s".format), "fps": df["fps"].map("{:g}".format),
        "tokens": df["video_tokens"].map("{:,.0f}".format), "steps": df["steps"].astype(str),
        "CFG": df["cfg"].map({True: "yes", False: "no"}),
        "train FLOPs": df["train_flops"].map(fmt_sci), "x GPT-3": df["gpt3_multiple"].map(fmt_multiple),
        "gpu": df["gpu"], "GPUs": df["gpus"].map("{:,}".format), "days": df["train_days"].map("{:,.1f}".format),
        "cost": df["cost_usd"].map(fmt_usd), "latency 1 GPU": df["latency_s_1gpu"].map("{:,.0f} s".format)})
    doc.table("points", df, human)
    doc.emit(fmt)


# ------------------------------------------------------------------------------------------------
# demand: a market of generated video -> GPUs, power, dollars (sora_compute/cli_demand.py builds the document)
# ------------------------------------------------------------------------------------------------

@cli.command()
@click.argument("scenario", default="factorial-funds-2024")
@click.option("--model", help="model preset that generates the video (default: the scenario's)")
@click.option("--gpu", help="GPU type that serves it (see `sora-compute gpus`)")
@click.option("--gpus-per-video", type=click.IntRange(1, 4096), help="GPUs that generate one video together")
@click.option("--mfu", type=FiniteFloatParam(0, 1, min_open=True), help="model-FLOPs utilisation (default: per GPU)")
@click.option("--steps", type=click.IntRange(1, 10000), help="sampling steps (a step-distilled sampler: its steps)")
@click.option("--cfg/--no-cfg", default=None, help="classifier-free guidance pair (default: the preset's own)")
@click.option("--cache-skip", type=FiniteFloatParam(0, 1, max_open=True), help="share of DiT evaluations cached")
@click.option("--resolution", help=RESOLUTION_HELP)
@click.option("--duration", type=FiniteFloatParam(0, 3600, min_open=True), help="seconds per clip")
@click.option("--fps", type=FiniteFloatParam(0, 240, min_open=True), help="frames per second")
@click.option("--ai-share", help="AI-generated share: one for every source (0.3) or NAME=SHARE pairs")
@click.option("--candidates", type=FiniteFloatParam(1, 1000), help="videos generated per kept video")
@click.option("--peak", type=FiniteFloatParam(1, 100), help="peak-to-average demand ratio")
@click.option("--utilisation", type=FiniteFloatParam(0.01, 1), help="target fleet utilisation")
@click.option("--growth", type=FiniteFloatParam(0, 10), help="demand growth a year (0.5 = +50%)")
@click.option("--gpu-price", type=FiniteFloatParam(0, 1e7, min_open=True), help="USD per GPU (capital)")
@click.option("--price", type=FiniteFloatParam(0, 1e4, min_open=True), help="USD per GPU-hour (rental)")
@click.option("--electricity", type=FiniteFloatParam(0, 10, min_open=True), help="USD per kWh")
@click.option("--pue", type=FiniteFloatParam(1, 10), help="datacentre PUE")
@click.option("--scenario", "training", help="training scenario to weigh inference against (" + SCENARIO_HELP + ")")
@FORMAT
@friendly_errors
def demand(scenario: str, fmt: str, **opts: Any) -> None:
    """Compute demand of a market of generated video (a preset from sora_compute/presets/demand, or a YAML/JSON
    file): video-minutes and FLOPs a day, GPUs on average and at peak, power, energy, capital and running cost, the
    break-even against a training run, published figures recomputed, and what moves the GPU count.

    \b
    Example:
      sora-compute demand factorial-funds-2024
      sora-compute demand --gpu b200 --no-cfg --steps 8 --ai-share TikTok=0.2,YouTube=0.05
      sora-compute demand my_market.yaml --format json
    """
    from sora_compute.cli_demand import demand_document

    opts["scenario"] = opts.pop("training")
    demand_document(scenario, opts, fmt).emit(fmt)


def main() -> None:
    """Console entry point: click errors become one line on stderr and exit status 2; a closed pipe ends quietly."""
    run_cli(cli)


if __name__ == "__main__":  # pragma: no cover
    main()
