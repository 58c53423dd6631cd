"""``sora-compute``: the command-line entry point (click).

Every bad input ends in one line on stderr naming the problem, and exit status 2.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from functools import wraps
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import click
import pandas as pd
from pydantic import ValidationError

from sora_compute import __version__
from sora_compute.evaluate.params import dit_params, model_params
from sora_compute.flops import FVCORE, MATMUL_ONLY, count_dit, count_text_encoder, count_vae_decode, count_vae_encode
from sora_compute.hardware import UnknownGPUError, gpu_catalog
from sora_compute.presets import (
    UnknownPresetError,
    all_presets,
    load_preset,
    load_yardstick,
    preset_names,
    yardstick_names,
)
from sora_compute.project import (
    Cluster,
    InferenceSettings,
    ScenarioFileError,
    TrainingScenario,
    UnknownScenarioError,
    estimate_inference,
    estimate_training,
    load_scenario,
    load_scenario_file,
    plan_cluster,
    plan_serving,
    with_main_stage_shape,
)
from sora_compute.sensitivity import published_estimates, published_inference, sensitivity
from sora_compute.specs import ModelSpec, VideoShapeError, VideoSpec
from sora_compute.units import fmt_duration_days, fmt_flops, fmt_int, fmt_sci, fmt_usd

F = TypeVar("F", bound=Callable[..., Any])


class UsageError(click.ClickException):
    """One-line error, exit status 2."""

    exit_code = 2


def _one_line(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    more = f" (+{e.error_count() - 1} more)" if e.error_count() > 1 else ""
    return f"{where}: {msg}{more}" if where else f"{msg}{more}"


def friendly_errors(fn: F) -> F:
    """Turn validation and lookup errors into one-line usage errors (exit 2)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ValidationError as e:
            raise UsageError(_one_line(e)) from None
        except (UnknownPresetError, UnknownGPUError, UnknownScenarioError, VideoShapeError, ScenarioFileError) as e:
            raise UsageError(str(e)) from None
        except ValueError as e:  # planner arguments that cannot work together (e.g. tp not dividing the heads)
            raise UsageError(str(e)) from None
        except OSError as e:  # an output folder that cannot be created or written
            raise UsageError(f"cannot write {e.filename or ''}: {e.strerror or e}") from None

    return wrapper  # type: ignore[return-value]


def _fmt_params(n: int) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:,.2f}{unit}"
    return str(n)


def _emit(df: pd.DataFrame, fmt: str) -> None:
    if fmt == "json":
        click.echo(df.to_json(orient="records", indent=2))
    elif fmt == "csv":
        click.echo(df.to_csv(index=False), nl=False)
    elif fmt == "markdown":
        click.echo(df.to_markdown(index=False, disable_numparse=True))
    else:
        click.echo(df.to_string(index=False))


FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "markdown"]), default="table",
                      show_default=True, help="output format")


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
def presets(fmt: str) -> None:
    """List the model presets: parameters, native video shape, tokens, source.

    \b
    Example:
      sora-compute presets --format csv
    """
    rows: list[dict[str, Any]] = []
    for p in all_presets():
        counts = model_params(p.model)
        rows.append({
            "preset": p.name, "kind": "video", "dit_params": counts["dit"],
            "dit_published": p.published.get("params"),
            "vae_params": counts["vae_encoder"] + counts["vae_decoder"], "text_params": counts["text_encoder"],
            "resolution": f"{p.video.width}x{p.video.height}", "frames": p.video.num_frames, "fps": p.video.fps,
            "duration_s": p.video.duration_s, "video_tokens": p.model.latent_shape(p.video).tokens,
            "text_tokens": p.model.num_text_tokens, "source": p.source,
        })
    for name in yardstick_names():
        y = load_yardstick(name)
        rows.append({"preset": y.name, "kind": "yardstick", "dit_params": y.params, "train_tokens": y.tokens,
                     "training_flops": y.training_flops, "source": y.source})
    df = pd.DataFrame(rows, dtype=object)  # exact ints in json / csv; blanks where a column does not apply
    if fmt in ("table", "markdown"):  # for people: one formatter per column; blanks where a column does not apply
        def params(v: Any) -> str:
            return _fmt_params(int(v))

        formatters: dict[str, Callable[[Any], str]] = {
            "dit_params": params, "dit_published": params, "vae_params": params, "text_params": params,
            "frames": lambda v: f"{int(v)}", "fps": lambda v: f"{v:g}", "duration_s": lambda v: f"{v:.2f}",
            "video_tokens": lambda v: f"{int(v):,}", "text_tokens": lambda v: f"{int(v)}",
            "train_tokens": lambda v: f"{v / 1e9:,.0f}B", "training_flops": fmt_flops,
            "source": (lambda v: v[:60] + ("..." if len(v) > 60 else "")) if fmt == "table" else str,
        }
        for col, f in formatters.items():
            df[col] = [f(v) if pd.notna(v) else "" for v in df[col]]
        df = df.fillna("")
    _emit(df, fmt)


@cli.command()
@click.argument("preset")
@FORMAT
@friendly_errors
def show(preset: str, fmt: str) -> None:
    """Show a preset's spec, parameter counts (exact) and tokens at its native shape.

    \b
    Example:
      sora-compute show sora
    """
    p = load_preset(preset)
    counts = model_params(p.model)
    latent = p.model.latent_shape(p.video)
    if fmt == "json":
        click.echo(pd.Series({
            "preset": p.name, "source": p.source, "model": p.model.model_dump(), "video": p.video.model_dump(),
            "params": counts, "latent": latent.model_dump(), "video_tokens": latent.tokens,
            "text_tokens": p.model.num_text_tokens, "text_encoder_tokens": list(p.model.text_encoder_tokens()),
            "published": p.published, "sampling": p.sampling.model_dump() if p.sampling else None,
        }).to_json(indent=2))
        return
    v = p.video
    click.echo(f"preset        {p.name}")
    click.echo(f"source        {p.source}")
    click.echo(f"video         {v.width}x{v.height} px, {v.num_frames} frames at {v.fps:g} fps ({v.duration_s:.2f} s)")
    click.echo(f"latent        {latent.frames} x {latent.height} x {latent.width} (T x H x W), "
               f"{p.model.vae.latent_channels} channels")
    click.echo(f"tokens        {latent.tokens:,} video ({latent.tokens_t} x {latent.tokens_h} x {latent.tokens_w}), "
               f"{p.model.num_text_tokens} text")
    d = p.model.dit
    click.echo(f"dit           depth {d.depth}, hidden {d.hidden_size}, heads {d.num_heads}, "
               f"patch {'x'.join(map(str, d.patch_size))}, {d.conditioning}, {d.attention_layout} attention")
    encoders = [f"{e.kind} {_fmt_params(e.params)} over {n} tokens"
                for e, n in zip(p.model.text_encoders, p.model.text_encoder_tokens(), strict=True)]
    if encoders:
        click.echo(f"text          {'; '.join(encoders)}")
    ours = {"params": counts["dit"], "vae_params": counts["vae_encoder"] + counts["vae_decoder"],
            "vae_decoder_params": counts["vae_decoder"], "text_params": counts["text_encoder"]}
    published = [f"{key.replace('params', '').replace('_', ' ').strip() or 'dit'} {_fmt_params(int(v))} "
                 f"(ours {ours[key] / v - 1:+.1%})" for key, v in p.published.items() if key in ours]
    if published:
        click.echo(f"published     {'; '.join(published)} (see the source)")
    if p.sampling is not None:
        guidance = "CFG (2 evaluations per step)" if p.sampling.cfg else "no CFG pair"
        click.echo(f"sampling      {p.sampling.steps} steps, {guidance} ({p.sampling.source})")
    click.echo("parameters (exact):")
    df = pd.DataFrame({"component": list(counts), "params": [f"{n:,}" for n in counts.values()],
                       "approx": [_fmt_params(n) for n in counts.values()]})
    if fmt == "csv":
        df = pd.DataFrame({"component": list(counts), "params": list(counts.values())})
    _emit(df, fmt)


# Common names for 16:9 frame sizes (width x height in pixels).
RESOLUTIONS = {"240p": (426, 240), "360p": (640, 360), "480p": (854, 480), "720p": (1280, 720),
               "1080p": (1920, 1080), "1440p": (2560, 1440), "2160p": (3840, 2160), "4k": (3840, 2160)}


def parse_resolution(text: str) -> tuple[int, int]:
    """'1280x720' or a name such as '720p' -> (width, height) in pixels."""
    key = text.strip().lower()
    if key in RESOLUTIONS:
        return RESOLUTIONS[key]
    parts = key.split("x")
    if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
        w, h = (int(p) for p in parts)
        if w > 0 and h > 0:
            return w, h
    raise UsageError(f"resolution: expected WIDTHxHEIGHT in pixels (e.g. 1280x720) or one of "
                     f"{', '.join(RESOLUTIONS)}; got {text!r}")


def _with_text_tokens(model: ModelSpec, text_tokens: int | None) -> ModelSpec:
    """The model with ``text_tokens`` prompt tokens instead of its native length (validated)."""
    if text_tokens is None:
        return model
    return ModelSpec.model_validate({**model.model_dump(), "text_tokens": text_tokens})


TEXT_TOKENS = click.option("--text-tokens", type=click.IntRange(min=1),
                           help="prompt tokens (default: the preset's text length)")


def _video_from_options(model: ModelSpec, native: VideoSpec, resolution: str | None, frames: int | None,
                        duration: float | None, fps: float | None) -> VideoSpec:
    """The queried video: native shape with overrides. A duration snaps to the nearest frame count the
    model accepts (e.g. 20 s at 24 fps -> 481 frames for a causal 4x VAE); explicit --frames must fit."""
    w, h = parse_resolution(resolution) if resolution else (native.width, native.height)
    rate = fps if fps is not None else native.fps
    if frames is not None and duration is not None:
        raise UsageError("give --frames or --duration, not both")
    if duration is not None:
        approx = VideoSpec.from_duration(w, h, duration, rate)
        return approx.model_copy(update={"num_frames": model.snap_frames(approx.num_frames)})
    return VideoSpec(width=w, height=h, num_frames=frames if frames is not None else native.num_frames, fps=rate)


@cli.command()
@click.argument("preset")
@click.option("--resolution", help="WIDTHxHEIGHT in pixels or a name (720p); default: the preset's native")
@click.option("--frames", type=int, help="number of frames (a causal VAE takes 1 + t*k)")
@click.option("--duration", type=float, help="seconds (frames = round(duration x fps))")
@click.option("--fps", type=float, help="frames per second")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="videos per forward")
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
      sora-compute flops sora --resolution 1920x1088 --duration 20
      sora-compute flops dit-xl-2 --by kind
    """
    p = load_preset(preset)
    model = _with_text_tokens(p.model, text_tokens)
    video = _video_from_options(model, p.video, resolution, frames, duration, fps)
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
    if fmt == "table":
        click.echo(f"{p.name}: {video.width}x{video.height}, {video.num_frames} frames at {video.fps:g} fps, "
                   f"{dit.shape['tokens']:,} video tokens, {model.num_text_tokens} text tokens, batch {batch}; "
                   "MACs, FLOPs = 2 x MACs")
        df = df.assign(macs=[f"{float(m):.4g}" for m in df["macs"]], flops=[f"{float(f):.4g}" for f in df["flops"]],
                       share=[f"{s:.1%}" for s in df["share"]])
    _emit(df, fmt)


@cli.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("reports/calibration"),
              show_default=True, help="folder for the per-module table (CSV, markdown) and the record")
@click.option("--write-record/--no-write-record", default=False,
              help="also update the calibration record shipped in the package (sora_compute/data)")
@friendly_errors
def calibrate(out_dir: Path, write_record: bool) -> None:
    """Profile the reference models with fvcore and FlopCounterMode and compare with the analytic counts.

    \b
    Example:
      sora-compute calibrate --out reports/calibration
    """
    from sora_compute import calibrate as cal  # imports fvcore and torch.jit: only when asked

    cases = cal.default_cases()
    out_dir.mkdir(parents=True, exist_ok=True)  # fail on an unwritable folder before profiling
    with click.progressbar(length=len(cases), label="profiling", file=sys.stderr) as bar:
        result = cal.calibrate(cases, progress=lambda name: bar.update(1))
    record_path = Path(str(resources.files("sora_compute").joinpath(cal.RECORD_PATH))) if write_record else None
    if record_path is not None:
        record_path.parent.mkdir(parents=True, exist_ok=True)
    written = cal.write_outputs(result, out_dir, record_path)
    s = result.summary()
    click.echo(s.assign(worst_fvcore_rel_err=s["worst_fvcore_rel_err"].map("{:.2e}".format),
                        worst_flopcounter_rel_err=s["worst_flopcounter_rel_err"].map("{:.2e}".format)
                        ).to_string(index=False))
    rec = result.record()
    click.echo(f"worst per-module relative error: fvcore {rec['worst_rel_err']['fvcore']:.2e}, "
               f"FlopCounterMode (meta) {rec['worst_rel_err']['flopcounter']:.2e}; correction factors: none")
    odd = result.unexpected_ops()
    click.echo(f"ops fvcore skipped beyond the elementwise ones: {odd if odd else 'none'}")
    click.echo("wrote " + ", ".join(str(p) for p in written))


@cli.command()
@FORMAT
def gpus(fmt: str) -> None:
    """List the GPU catalog: dense BF16/FP8 TFLOP/s, memory, bandwidth, power, assumed price, source.

    \b
    Example:
      sora-compute gpus --format csv
    """
    df = gpu_catalog()
    if fmt == "table":
        df = df[["key", "bf16_tflops", "fp8_tflops", "hbm_gb", "hbm_tbps", "scale_up_gbps", "tdp_w",
                 "price_usd_per_hour", "default_mfu"]]
    _emit(df, fmt)


def _gpu_list(text: str) -> list[str]:
    return [g.strip() for g in text.split(",") if g.strip()]


def _scenario(arg: str) -> TrainingScenario:
    """A scenario by name (scenarios.yaml) or from a yaml file (path ending in .yaml/.yml)."""
    if arg.endswith((".yaml", ".yml")):
        return load_scenario_file(arg)
    return load_scenario(arg)


@cli.command()
@click.argument("scenario", default="sora")
@click.option("--resolution", help="what-if: main stage at WIDTHxHEIGHT (or 720p, 1080p, ...)")
@click.option("--duration", type=float, help="what-if: main stage clips of this many seconds")
@click.option("--fps", type=float, help="what-if: main stage at this frame rate")
@click.option("--gpu", "gpu_list", default="h100-sxm,h200,b200", show_default=True,
              help="comma-separated GPU types for the cluster plans (see `sora-compute gpus`)")
@click.option("--gpus", "count", type=click.IntRange(min=1), default=4096, show_default=True, help="GPUs per cluster")
@click.option("--mfu", type=click.FloatRange(0, 1, min_open=True), help="model-FLOPs utilisation (default: per GPU)")
@click.option("--price", type=click.FloatRange(0, min_open=True), help="USD per GPU-hour (default: catalog)")
@click.option("--pue", type=click.FloatRange(min=1), default=1.2, show_default=True, help="datacentre PUE")
@click.option("--steps", type=click.IntRange(min=1), default=50, show_default=True, help="sampling steps")
@click.option("--cfg/--no-cfg", default=True, show_default=True, help="classifier-free guidance (2 DiT passes)")
@FORMAT
@friendly_errors
def estimate(scenario: str, resolution: str | None, duration: float | None, fps: float | None, gpu_list: str,
             count: int, mfu: float | None, price: float | None, pue: float, steps: int, cfg: bool, fmt: str) -> None:
    """Capacity estimate of a training scenario (a name from scenarios.yaml, or a yaml file with one entry):
    training compute and its GPT-3 multiple, cluster time/cost/energy, inference cost per video and per
    minute, and what moves the estimate. --resolution/--duration/--fps re-shape the main training stage
    and the inference clip.

    \b
    Example:
      sora-compute estimate sora --gpu h100-sxm,b200 --gpus 4096 --mfu 0.4
      sora-compute estimate sora --resolution 1920x1088 --duration 20 --no-cfg --steps 8
      sora-compute estimate my_scenario.yaml
    """
    sc = _scenario(scenario)
    if duration is not None and duration <= 0:
        raise UsageError(f"--duration must be positive seconds, got {duration:g}")
    if fps is not None and fps <= 0:
        raise UsageError(f"--fps must be positive, got {fps:g}")
    w, h = parse_resolution(resolution) if resolution else (None, None)
    sc = with_main_stage_shape(sc, w, h, duration, fps)
    est = estimate_training(sc)
    clusters = [Cluster(gpu=g, count=count, mfu=mfu, price_usd_per_hour=price, pue=pue) for g in _gpu_list(gpu_list)]
    plans = [plan_cluster(est, c) for c in clusters]
    preset = load_preset(sc.model.name) if sc.model.name in preset_names() else None
    native = preset.video if preset is not None else VideoSpec(width=1280, height=720, num_frames=1, fps=24)
    video = _video_from_options(sc.model, native, resolution, None, duration, fps)
    inf = estimate_inference(sc.model, video, InferenceSettings(steps=steps, cfg=cfg))
    serving = [plan_serving(inf, c.gpu, gpus_per_video=1, mfu=mfu) for c in clusters]
    sens = sensitivity(sc)
    published = published_estimates(est)
    if fmt != "table":
        payload = {
            "scenario": sc.name, "training": est.summary(), "stages": est.by_stage().to_dict(orient="records"),
            "clusters": [p.summary() for p in plans],
            "inference": {"flops_per_video": inf.flops_per_video, "flops_per_minute": inf.flops_per_minute,
                          "flops_per_1k_videos": inf.flops_per_1k_videos,
                          "by_component": inf.flops_by_component, "serving": [s.summary() for s in serving]},
            "sensitivity": sens.to_dict(orient="records"),
            "published": published.drop(columns=["reading"]).to_dict(orient="records"),
            "assumptions": sc.assumptions, "units": "FLOPs (= 2 x MACs)",
        }
        if fmt == "json":
            click.echo(pd.Series(payload).to_json(indent=2))
        else:
            _emit(pd.DataFrame([p.summary() for p in plans]), "csv")
        return
    m = sc.model
    click.echo(f"== {sc.name}: {m.name} preset, DiT {dit_params(m.dit) / 1e9:.2f}B parameters "
               f"({m.dit.depth} x {m.dit.hidden_size}), {m.dit.conditioning}, {m.dit.attention_layout} attention")
    click.echo("\nTraining compute (FLOPs = 2 x MACs; model FLOPs = 3 x DiT forward per sample):")
    st = est.by_stage()
    click.echo(pd.DataFrame({"stage": st["stage"], "samples": [fmt_sci(x) for x in st["samples"]],
                             "model FLOPs": [fmt_sci(x) for x in st["model_flops"]],
                             "x GPT-3": [f"{x:.2f}" for x in st["gpt3_multiple"]]}).to_string(index=False))
    click.echo(f"  total           {fmt_flops(est.model_flops)} = {est.gpt3_multiple:.2f}x GPT-3 175B "
               f"(3.14e23, paper); {est.gpt3_multiple_6nd:.2f}x GPT-3 by 6·N·D (3.15e23)")
    click.echo(f"  hardware FLOPs  {fmt_flops(est.hardware_flops)} (with {sc.checkpointing} activation recomputation)")
    click.echo(f"  6·N·D reading   {fmt_flops(est.six_nd_flops)} = {est.six_nd_multiple:.2f}x GPT-3: what a "
               f"parameter-count estimate of the same plan says (no attention term)")
    click.echo(f"\nCluster plans ({count:,} GPUs each; time = model FLOPs / (GPUs x peak BF16 x MFU)):")
    click.echo(pd.DataFrame({
        "gpu": [p.cluster.gpu for p in plans], "MFU": [f"{p.cluster.effective_mfu:.0%}" for p in plans],
        "wall clock": [fmt_duration_days(p.days) for p in plans], "GPU-days": [fmt_int(p.gpu_days) for p in plans],
        "cost": [fmt_usd(p.cost_usd) for p in plans], "energy": [f"{p.energy_mwh:,.0f} MWh" for p in plans],
    }).to_string(index=False))
    v = inf.video
    click.echo(f"\nInference, one {v.width}x{v.height} clip of {v.num_frames} frames ({v.duration_s:.1f} s), "
               f"{steps} steps, CFG {'on' if cfg else 'off'}:")
    comp = inf.to_frame()
    click.echo("  " + ", ".join(f"{c} {fmt_sci(float(f))} ({sh:.0%})"
                                for c, f, sh in zip(comp["component"], comp["flops"], comp["share"], strict=True)))
    click.echo(f"  {fmt_flops(inf.flops_per_video)} per video, {fmt_flops(inf.flops_per_minute)} per minute of video, "
               f"{fmt_flops(inf.flops_per_1k_videos)} per 1k videos")
    click.echo(pd.DataFrame({
        "gpu": [s.gpu.key for s in serving], "latency (1 GPU)": [f"{s.latency_s:,.0f} s" for s in serving],
        "roofline bound": [f"{s.latency_lower_bound_s:,.0f} s" for s in serving],
        "video min / GPU-hour": [f"{s.video_minutes_per_gpu_hour:.2f}" for s in serving],
        "$ / video minute": [fmt_usd(s.cost_per_video_usd * 60 / v.duration_s) for s in serving],
    }).to_string(index=False))
    click.echo(f"\nSensitivity of the GPT-3 multiple (base {est.gpt3_multiple:.2f}x):")
    def arrow(labels: pd.Series, values: pd.Series) -> list[str]:
        return [f"{a} -> {b:.1f}x" for a, b in zip(labels, values, strict=True)]

    click.echo(pd.DataFrame({"assumption": sens["assumption"], "base": sens["base"],
                             "low": arrow(sens["low"], sens["multiple_low"]),
                             "high": arrow(sens["high"], sens["multiple_high"])}).to_string(index=False))
    if sc.model.name != "sora":
        return
    click.echo("\nPublished Sora estimates under this model:")
    for row in published.to_dict(orient="records"):
        click.echo(f"  {row['source']}: {fmt_flops(float(row['flops']))} = {row['gpt3_multiple']:.1f}x GPT-3. "
                   f"{row['reading']}")
    click.echo("Published Sora inference estimate under this model:")
    for row in published_inference().to_dict(orient="records"):
        click.echo(f"  {row['source']}: {row['video_minutes_per_h100_hour']:.3g} video-minutes per H100-hour "
                   f"({fmt_sci(float(row['flops_per_video_minute']))} FLOPs per minute). {row['reading']}")


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


@cli.command()
@click.argument("preset", default="sora")
@click.option("--resolution", help="WIDTHxHEIGHT in pixels or a name (720p); default: the preset's native")
@click.option("--frames", type=int, help="number of frames (a causal VAE takes 1 + t*k)")
@click.option("--duration", type=float, help="seconds (snapped to a frame count the model accepts)")
@click.option("--fps", type=float, help="frames per second")
@click.option("--gpu", default="h100-sxm", show_default=True, help="GPU type (see `sora-compute gpus`)")
@click.option("--gpus", "count", type=click.IntRange(min=1), default=1024, show_default=True,
              help="GPUs in the training job (DP = GPUs / (TP x CP x PP))")
@click.option("--tp", type=click.IntRange(min=1), help="tensor parallel size (with --cp/--pp: no search)")
@click.option("--cp", type=click.IntRange(min=1), help="context parallel size")
@click.option("--pp", type=click.IntRange(min=1), help="pipeline parallel size")
@click.option("--zero", type=click.IntRange(0, 3), default=3, show_default=True, help="ZeRO stage")
@click.option("--micro-batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--checkpointing", type=click.Choice(["none", "selective", "full"]), default="full", show_default=True)
@click.option("--attention", type=click.Choice(["fused", "materialized"]), default="fused", show_default=True)
@click.option("--ema/--no-ema", default=False, show_default=True, help="keep an fp32 EMA copy")
@TEXT_TOKENS
@FORMAT
@friendly_errors
def memory(preset: str, resolution: str | None, frames: int | None, duration: float | None, fps: float | None,
           gpu: str, count: int, tp: int | None, cp: int | None, pp: int | None, zero: int, micro_batch: int,
           checkpointing: str, attention: str, ema: bool, text_tokens: int | None, fmt: str) -> None:
    """Memory per GPU: training (the smallest TP x CP x PP layout that fits, or the one given) and inference
    (text encoder, DiT with the CFG pair, VAE decode, with a tiling that fits when untiled does not).

    \b
    Example:
      sora-compute memory sora --gpu h100-sxm --gpus 4096
      sora-compute memory sora --resolution 1920x1088 --duration 60 --tp 8 --cp 8 --pp 1
    """
    from sora_compute.memory import planner as mp

    p = load_preset(preset)
    model = _with_text_tokens(p.model, text_tokens)
    video = _video_from_options(model, p.video, resolution, frames, duration, fps)
    model.latent_shape(video)  # validate the shape first: one clear error
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
    stages = {s: mp.inference_memory(model, video, gpu, s, kernel=ker)  # type: ignore[arg-type]
              for s in ("text", "dit", "vae_decode")}
    tile, tiled = (None, None)
    if not stages["vae_decode"].fits:
        try:
            tile, tiled = mp.recommend_vae_tiling(model, video, gpu)
        except ValueError as e:
            tiled = None
            click.echo(f"note: {e}", err=True)
    if fmt != "table":
        payload: dict[str, Any] = {"preset": p.name, "video": video.model_dump(), "layout": layout.model_dump(),
                   "training": {**train.summary(), "components_bytes": train.components,
                                "transient_bytes": train.transient},
                   "inference": {s: {**m.summary(), "components_bytes": m.components} for s, m in stages.items()},
                   "vae_tile_latent": tile, "units": "bytes; GiB = 2^30 bytes"}
        if searched is not None:
            payload["layouts_considered"] = searched.to_dict(orient="records")
        if fmt == "json":
            click.echo(pd.Series(payload).to_json(indent=2))
        else:
            _emit(train.to_frame(), "csv")
        return
    v = video
    click.echo(f"== {p.name}: {v.width}x{v.height}, {v.num_frames} frames ({v.duration_s:.1f} s), "
               f"{model.latent_shape(v).tokens:,} video tokens; {gpu}, {count:,} GPUs; bf16 weights/activations, "
               f"fp32 master + AdamW moments, {ck} checkpointing, {ker} attention")
    if searched is not None:
        n_fit = int(searched["fits"].sum())
        click.echo(f"\nLayouts considered: {len(searched)} ({n_fit} fit); smallest model-parallel first:")
        click.echo(searched.head(8)[["layout", "peak_GiB", "fits"]].to_string(index=False, float_format="%.1f"))
    verdict = "FITS" if train.fits else "DOES NOT FIT"
    click.echo(f"\nTraining memory per GPU, {layout.label()}: {_gib(train.peak_bytes)} of "
               f"{_gib(train.capacity_bytes)} usable -> {verdict}")
    df = train.to_frame()
    click.echo(df.assign(GiB=df["GiB"].map("{:,.2f}".format))[["component", "GiB"]].to_string(index=False))
    for note in train.notes:
        click.echo(f"  note: {note}")
    if train.fits:
        longest = mp.max_feasible(model, video, "num_frames", layout, gpu, precision, ck, ker)  # type: ignore[arg-type]
        batch = mp.max_feasible(model, video, "micro_batch", layout, gpu, precision, ck, ker)  # type: ignore[arg-type]
        if isinstance(longest, VideoSpec):
            click.echo(f"  largest that fits this layout: {longest.num_frames} frames "
                       f"({longest.duration_s:.1f} s) at this resolution; micro-batch {batch}")
    click.echo(f"\nInference memory on one {gpu} (each stage alone; weights bf16):")
    for s_name, m in stages.items():
        click.echo(f"  {s_name:10s} {_gib(m.peak_bytes):>14s}  {'fits' if m.fits else 'does NOT fit'}")
    if tile is not None and tiled is not None:
        click.echo(f"  VAE decode untiled needs {_gib(stages['vae_decode'].peak_bytes)}: decode in latent tiles of "
                   f"{tile[0]} x {tile[1]} x {tile[2]} (frames x height x width; "
                   f"{tile[1] * model.vae.spatial_compression} x {tile[2] * model.vae.spatial_compression} px) -> "
                   f"{_gib(tiled.peak_bytes)} ({', '.join(tiled.notes)})")
    if not stages["dit"].fits:
        need = stages["dit"].peak_bytes / stages["dit"].capacity_bytes
        click.echo(f"  the DiT forward needs {need:.1f}x one GPU: split the sequence (context parallel) over "
                   f">= {math.ceil(need)} GPUs")


@cli.command()
@click.option("--scenario", default="sora", show_default=True, help="training scenario (scenarios.yaml)")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="default: reports/SCENARIO")
@click.option("--gpus", "count", type=click.IntRange(min=1), default=4096, show_default=True, help="GPUs per cluster")
@click.option("--calibration/--no-calibration", default=True, show_default=True,
              help="include the calibration figure (profiles the reference models, ~5 s)")
@friendly_errors
def report(scenario: str, out_dir: Path | None, count: int, calibration: bool) -> None:
    """Write a capacity-planning report (markdown + self-contained HTML + PNG figures).

    \b
    Example:
      sora-compute report --scenario sora --out reports/sora
    """
    from sora_compute.report import write_report

    sc = load_scenario(scenario)
    out = out_dir or Path("reports") / sc.name
    out.mkdir(parents=True, exist_ok=True)  # fail on an unwritable folder before any output
    steps = 9 if calibration else 8
    with click.progressbar(length=steps, label="report", file=sys.stderr) as bar:
        written = write_report(sc, out, gpus=count, progress=lambda _: bar.update(1), calibration=calibration)
    click.echo("wrote " + ", ".join(str(p) for p in written))


@cli.command()
@click.argument("scenario", default="sora")
@click.option("--gpu", default="h100-sxm", show_default=True, help="GPU type")
@click.option("--gpus", "count", type=click.IntRange(min=1), help="GPUs: how long does it take?")
@click.option("--days", type=click.FloatRange(0, min_open=True), help="deadline: how many GPUs are needed?")
@click.option("--budget", type=click.FloatRange(0, min_open=True), help="USD: how far does it go on --gpus GPUs?")
@click.option("--mfu", type=click.FloatRange(0, 1, min_open=True), help="model-FLOPs utilisation (default: per GPU)")
@click.option("--price", type=click.FloatRange(0, min_open=True), help="USD per GPU-hour (default: catalog)")
@click.option("--pue", type=click.FloatRange(min=1), default=1.2, show_default=True)
@click.option("--precision", type=click.Choice(["bf16", "fp8"]), default="bf16", show_default=True)
@FORMAT
@friendly_errors
def plan(scenario: str, gpu: str, count: int | None, days: float | None, budget: float | None, mfu: float | None,
         price: float | None, pue: float, precision: str, fmt: str) -> None:
    """Cluster plan for a training scenario: wall-clock days, GPU-hours, cost and energy; or the inverse
    (GPUs needed to finish in --days; what a --budget buys on --gpus GPUs).

    \b
    Example:
      sora-compute plan sora --gpu b200 --days 30
      sora-compute plan sora --gpu h100-sxm --gpus 4096 --budget 5e6
    """
    from sora_compute.project import budget_plan, gpus_for_days

    est = estimate_training(load_scenario(scenario))
    if days is not None and count is None:
        count = gpus_for_days(est, gpu, days, mfu, precision)  # type: ignore[arg-type]
    if count is None:
        count = 4096
    cluster = Cluster(gpu=gpu, count=count, mfu=mfu, price_usd_per_hour=price, pue=pue, precision=precision)
    plan_ = plan_cluster(est, cluster)
    row = plan_.summary()
    if budget is not None:
        row.update(budget_plan(est, cluster, budget))
    if days is not None:
        row["deadline_days"] = days
    if fmt != "table":
        _emit(pd.DataFrame([row]), fmt)
        return
    click.echo(f"{scenario}: {fmt_sci(est.model_flops)} model FLOPs ({est.gpt3_multiple:.2f}x GPT-3), "
               f"{fmt_sci(est.hardware_flops)} hardware FLOPs")
    if days is not None:
        click.echo(f"  to finish in {days:g} days: {count:,} x {gpu} at MFU {cluster.effective_mfu:.0%}")
    click.echo(f"  {count:,} x {gpu} ({precision}, MFU {cluster.effective_mfu:.0%}, HFU {plan_.hfu:.0%}): "
               f"{fmt_duration_days(plan_.days)}, {fmt_int(plan_.gpu_hours)} GPU-hours, {fmt_usd(plan_.cost_usd)}, "
               f"{plan_.energy_mwh:,.0f} MWh (PUE {pue:g})")
    if budget is not None:
        b = budget_plan(est, cluster, budget)
        click.echo(f"  {fmt_usd(budget)} buys {fmt_duration_days(b['affordable_days'])} on this cluster: "
                   f"{b['fraction_completed']:.0%} of the run (the whole run costs {fmt_usd(b['budget_needed_usd'])})")


def _floats(text: str, what: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"{what}: expected comma-separated numbers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise UsageError(f"{what}: expected positive numbers, got {text!r}")
    return values


@cli.command()
@click.option("--model", "models", default="sora", show_default=True, help="comma-separated presets")
@click.option("--resolution", "resolutions", default="480p,720p,1080p", show_default=True,
              help="comma-separated WIDTHxHEIGHT or names (480p, 720p, 1080p, ...)")
@click.option("--duration", "durations", default="5,10,30,60", show_default=True, help="seconds, comma-separated")
@click.option("--fps", "fps_list", default="24", show_default=True, help="comma-separated")
@click.option("--gpu", "gpu_list", default="h100-sxm", show_default=True, help="comma-separated GPU types")
@click.option("--gpus", "counts", default="4096", show_default=True, help="comma-separated cluster sizes")
@click.option("--samples", type=click.FloatRange(0, min_open=True), default=1e7, show_default=True,
              help="training clips per point")
@click.option("--steps", type=click.IntRange(min=1), default=50, show_default=True, help="sampling steps")
@FORMAT
@friendly_errors
def sweep(models: str, resolutions: str, durations: str, fps_list: str, gpu_list: str, counts: str, samples: float,
          steps: int, fmt: str) -> None:
    """Grid of what-ifs, one row per point: tokens, FLOPs per video, training FLOPs and GPT-3 multiple for
    --samples clips, days/cost on each cluster, inference latency. Sizes that a model cannot take are
    rounded to the nearest multiple of its compression x patch (e.g. 1080 -> 1088).

    \b
    Example:
      sora-compute sweep --resolution 480p,720p,1080p --duration 5,10,30,60 --gpu h100-sxm,b200
    """
    from sora_compute.project import sweep as run_sweep

    names = [m.strip() for m in models.split(",") if m.strip()]
    frames = []
    for name in names:
        model = load_preset(name).model
        step_h = model.vae.spatial_compression * model.dit.patch_size[1]
        step_w = model.vae.spatial_compression * model.dit.patch_size[2]
        res = [parse_resolution(r) for r in resolutions.split(",") if r.strip()]
        res = [(max(step_w, round(w / step_w) * step_w), max(step_h, round(h / step_h) * step_h)) for w, h in res]
        try:
            n = [int(c) for c in counts.split(",") if c.strip()]
        except ValueError:
            raise UsageError(f"--gpus: expected comma-separated integers, got {counts!r}") from None
        if not n or min(n) < 1:
            raise UsageError(f"--gpus: expected positive integers, got {counts!r}")
        frames.append(run_sweep([name], res, _floats(durations, "--duration"), fps=_floats(fps_list, "--fps"),
                                gpus=[g.strip() for g in gpu_list.split(",") if g.strip()], gpu_counts=n,
                                samples=samples, steps=steps))
    df = pd.concat(frames, ignore_index=True)
    if fmt == "table":
        df = pd.DataFrame({
            "model": df["model"], "resolution": df["width"].astype(str) + "x" + df["height"].astype(str),
            "duration": df["duration_s"].map("{:.1f} s".format), "tokens": df["video_tokens"].map("{:,.0f}".format),
            "train FLOPs": df["train_flops"].map(fmt_sci), "x GPT-3": df["gpt3_multiple"].map("{:.2f}".format),
            "gpu": df["gpu"], "GPUs": df["gpus"], "days": df["train_days"].map("{:,.1f}".format),
            "cost": df["cost_usd"].map(fmt_usd), "latency 1 GPU": df["latency_s_1gpu"].map("{:,.0f} s".format)})
    _emit(df, fmt)


def main() -> None:
    """Console entry point: click errors become one line on stderr and exit status 2."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.Abort:  # pragma: no cover
        sys.exit(130)
    except click.ClickException as e:
        click.echo(f"Error: {e.format_message()}", err=True)
        sys.exit(2 if isinstance(e, click.UsageError) else e.exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()
