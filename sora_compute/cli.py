"""``sora-compute``: the command-line entry point (click).

Every bad input ends in one line on stderr naming the problem, and exit status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import pandas as pd

from sora_compute import __version__
from sora_compute.cli_device import calibrate_device
from sora_compute.cli_plan import PLAN_GPUS
from sora_compute.cli_support import (
    COUNT,
    FORMAT,
    POSITIVE,
    Document,
    FiniteFloatParam,
    UsageError,
    friendly_errors,
    progress_hidden,
    run_cli,
)
from sora_compute.planning import resolve_scenario

__all__ = ["cli", "main", "UsageError"]

F = TypeVar("F", bound=Callable[..., Any])
DEADLINE_DAYS = FiniteFloatParam(0, 36525, min_open=True)  # a recipe deadline: up to 100 years
MFU_HELP = ("assumed model-FLOPs utilisation: time = FLOPs / (GPUs x peak x MFU) instead of the time model's "
            "prediction (the default)")


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
    from sora_compute.cli_catalog import presets_document

    presets_document(fmt).emit(fmt)


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
    from sora_compute.cli_show import show_document

    show_document(preset, fmt).emit(fmt)


TEXT_TOKENS = click.option("--text-tokens", type=click.IntRange(1, 2**31),
                           help="prompt tokens (default: the preset's text length)")
TEXT_ENCODER_DTYPE = click.option(
    "--text-encoder-dtype", type=click.Choice(["fp32", "tf32", "bf16", "fp16"]),
    help="dtype every text encoder runs in at inference: its weights, activations and time (tf32: fp32 tensors with "
         "TF32 matmuls; default: the official pipeline's, `sora-compute show PRESET`, else the run's dtype)")
RESOLUTION_HELP = ("WIDTHxHEIGHT in pixels, or a name (480p, 720p, 1080p, 4k: snapped to the model's grid, with a "
                   "note); default: the preset's native")
FPS_HELP = "frames per second (the clip keeps its duration: frames are recounted)"



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
    from sora_compute.cli_flops import flops_document

    flops_document(preset, resolution, frames, duration, fps, batch, by, matmul_only, text_tokens,
                   fmt).emit(fmt)


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
    (about 12 s: measured 12.2 s on 2 CPU cores; a progress bar on a terminal). With --device, measure the
    device's kernels into a hardware profile the time model uses (under 2 minutes: measured 101 s on 2 shared CPU
    cores at load average 4.4, GEMM and conv shapes timed with weights cold and warm; --full 586 s before the warm
    points).

    \b
    Example:
      sora-compute calibrate --out reports/calibration
      sora-compute calibrate --device cpu --out my_cpu.yaml
    """
    if device is not None:
        calibrate_device(device, out_path, full, threads, fmt)
        return
    from sora_compute.cli_calibrate import calibrate_document

    calibrate_document(out_path, write_record, full, fmt).emit(fmt)


@cli.command()
@FORMAT
@friendly_errors
def gpus(fmt: str) -> None:
    """List the GPU catalog: dense BF16/FP8 TFLOP/s, memory, bandwidth, power, assumed price, source.

    \b
    Example:
      sora-compute gpus --format csv
    """
    from sora_compute.cli_catalog import gpus_document

    gpus_document(fmt).emit(fmt)


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
    from sora_compute.cli_validate import validate_document

    validate_document(kernel, path, show_all).emit(fmt)


SCENARIO_HELP = "a scenario from scenarios.yaml, or a YAML/JSON scenario file (see the README)"


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
@click.option("--mfu", type=FiniteFloatParam(0, 1, min_open=True), help=MFU_HELP)
@click.option("--price", type=POSITIVE, help="USD per GPU-hour, for training and serving (default: catalog)")
@click.option("--pue", type=FiniteFloatParam(1), default=1.2, show_default=True, help="datacentre PUE")
@click.option("--steps", type=COUNT, help="sampling steps (default: the preset's published default, else 50)")
@click.option("--cfg/--no-cfg", default=None, help="classifier-free guidance pair (default: the preset's own)")
@click.option("--recipe", help="a training recipe (preset or YAML/JSON file) instead of the scenario: its per-stage "
              "table and totals, as `sora-compute recipe` prints them")
@FORMAT
@friendly_errors
def estimate(scenario: str, resolution: str | None, duration: float | None, fps: float | None, stage: str | None,
             gpu_list: str, count: int, mfu: float | None, price: float | None, pue: float, steps: int | None,
             cfg: bool | None, recipe: str | None, fmt: str) -> None:
    """Capacity estimate of a training scenario (a name from scenarios.yaml, or a YAML/JSON file): training
    compute and its GPT-3 multiple, cluster time/cost/energy, inference cost per video and per minute, and
    what moves the estimate. --resolution/--duration/--fps reshape one stage (--stage; default the one with
    the most model FLOPs) and the inference clip.

    \b
    Example:
      sora-compute estimate sora --gpu h100-sxm,b200 --gpus 4096 --mfu 0.4
      sora-compute estimate sora --resolution 1080p --duration 20 --no-cfg --steps 8
      sora-compute estimate my_scenario.yaml
      sora-compute estimate --recipe open-sora-2.0 --gpu h100-sxm,h200
    """
    if recipe is not None:
        from sora_compute.cli_recipe import recipe_option_document

        recipe_option_document(recipe, ("gpu_list", "price"), gpu_list, None, price, fmt).emit(fmt)
        return
    from sora_compute.cli_estimate import estimate_document

    estimate_document(scenario=scenario, resolution=resolution, duration=duration, fps=fps, stage=stage,
        gpu_list=gpu_list, count=count, mfu=mfu, price=price, pue=pue, steps=steps, cfg=cfg, fmt=fmt).emit(fmt)


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
@click.option("--vae-decode", type=click.Choice(["official", "whole", "tiled", "chunked"]), default="official",
              show_default=True, help="VAE decode schedule: the official pipeline's, the whole clip, overlapping "
                                      "tiles, or latent-frame chunks with a causal cache (Wan)")
@click.option("--vae-encode", type=click.Choice(["official", "whole", "chunked"]), default="official",
              show_default=True, help="with --encode-on-the-fly: the VAE encode schedule (the official pipeline's, "
                                      "the whole clip, or frame chunks with a causal cache: Wan)")
@click.option("--offload", type=click.Choice(["none", "free_text", "text_on_cpu", "model", "model_text_on_cpu",
                                             "sequential"]),
              default="none", show_default=True,
              help="inference weights: all on the GPU, the text encoder moved to the CPU after encoding or run there, "
                   "one component on the GPU (model offload), or weights streamed (sequential offload)")
@click.option("--inference-gpus", type=click.IntRange(1, 1024), default=1, show_default=True,
              help="GPUs one video may use (the verdict tries FSDP / sequence parallel over up to this many)")
@click.option("--encode-on-the-fly/--precomputed-latents", default=False, show_default=True,
              help="training: the frozen VAE and text encoders run on each micro-batch before the forward (their "
                   "weights resident, their peak on the model states), or latents and embeddings are precomputed")
@TEXT_TOKENS
@TEXT_ENCODER_DTYPE
@FORMAT
@friendly_errors
def memory(preset: str, resolution: str | None, frames: int | None, duration: float | None, fps: float | None,
           gpu: str, count: int, tp: int | None, cp: int | None, pp: int | None, zero: int, micro_batch: int,
           checkpointing: str, attention: str, ema: bool, cfg: bool | None, vae_decode: str, vae_encode: str,
           offload: str, inference_gpus: int, encode_on_the_fly: bool, text_tokens: int | None,
           text_encoder_dtype: str | None, fmt: str) -> None:
    """Memory per GPU: training (the smallest TP x CP x PP layout that fits, or the one given) and inference
    (text encoder, DiT with the CFG pair when the model samples with one, VAE decode, with a tiling that fits when
    untiled does not). The first line is the inference verdict: fits, fits with the cheapest change, or does not fit;
    then the pipeline's timeline (encode text -> denoise -> decode: what is resident, allocated and reserved).

    \b
    Example:
      sora-compute memory sora --gpu h100-sxm --gpus 4096
      sora-compute memory sora --resolution 1920x1088 --duration 60 --tp 8 --cp 8 --pp 1
    """
    from sora_compute.cli_memory import memory_document

    memory_document(preset=preset, resolution=resolution, frames=frames, duration=duration, fps=fps, gpu=gpu,
        count=count, tp=tp, cp=cp, pp=pp, zero=zero, micro_batch=micro_batch, checkpointing=checkpointing,
        attention=attention, ema=ema, cfg=cfg, vae_decode=vae_decode, vae_encode=vae_encode, offload=offload,
        inference_gpus=inference_gpus,
        encode_on_the_fly=encode_on_the_fly, text_tokens=text_tokens, text_encoder_dtype=text_encoder_dtype,
        fmt=fmt).emit(fmt)


@cli.command()
@click.option("--scenario", default="sora", show_default=True, help=SCENARIO_HELP)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="default: reports/SCENARIO")
@click.option("--gpus", "count", type=COUNT, default=4096, show_default=True, help="GPUs per cluster")
@click.option("--calibration/--no-calibration", default=True, show_default=True,
              help="include the calibration figure (profiles the reference models: about 12 s more)")
@FORMAT
@friendly_errors
def report(scenario: str, out_dir: Path | None, count: int, calibration: bool, fmt: str) -> None:
    """Write a capacity-planning report (markdown + self-contained HTML + PNG figures): about 17 s with the
    calibration figure, 5 s without (measured 16.8 s and 4.7 s on 2 CPU cores). A progress bar shows on a terminal.

    \b
    Example:
      sora-compute report --scenario sora --out reports/sora
    """
    from sora_compute.report import write_report

    sc = resolve_scenario(scenario)
    out = out_dir or Path("reports") / sc.name
    out.mkdir(parents=True, exist_ok=True)  # fail on an unwritable folder before any output
    steps = 11 if calibration else 10
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
@click.option("--mfu", type=FiniteFloatParam(0, 1, min_open=True), help=MFU_HELP)
@click.option("--price", type=POSITIVE, help="USD per GPU-hour (default: catalog)")
@click.option("--pue", type=FiniteFloatParam(1), default=1.2, show_default=True)
@click.option("--precision", type=click.Choice(["bf16", "fp8"]), default="bf16", show_default=True)
@click.option("--layouts", "search", is_flag=True, help="search the parallel layouts (DP x TP x CP x PP, ZeRO, "
              "micro-batch, checkpointing, attention kernel) of the main stage's shape: predicted step time")
@click.option("--layout", "pin", help="pin layout fields in the search, e.g. tp=2,cp_ring=4,zero=3 (implies --layouts)")
@click.option("--global-batch", type=COUNT, help="samples per step for --layouts (default: one per GPU)")
@click.option("--recipe", help="a training recipe (preset or YAML/JSON file) instead of the scenario: its per-stage "
              "table and totals, as `sora-compute recipe` prints them")
@FORMAT
@friendly_errors
def plan(scenario: str, gpu: str, count: int | None, days: float | None, budget: float | None, mfu: float | None,
         price: float | None, pue: float, precision: str, search: bool, pin: str | None, global_batch: int | None,
         recipe: str | None, fmt: str) -> None:
    """Cluster plan for a training scenario (a name, or a YAML/JSON file): wall-clock days, GPU-hours, cost and
    energy; or the inverse (GPUs needed to finish in --days; what a --budget buys on --gpus GPUs).

    \b
    Example:
      sora-compute plan sora --gpu b200 --days 30
      sora-compute plan sora --gpu h100-sxm --gpus 4096 --budget 5e6
      sora-compute plan sora --gpus 4096 --layouts --layout zero=3
      sora-compute plan --recipe open-sora-2.0 --gpu h100-sxm --days 14
    """
    if recipe is not None:
        from sora_compute.cli_recipe import recipe_option_document

        recipe_option_document(recipe, ("gpu", "days", "price"), gpu, days, price, fmt).emit(fmt)
        return
    from sora_compute.cli_plan import plan_document

    plan_document(scenario, gpu, count, days, budget, mfu, price, pue, precision, search, pin, global_batch,
                  fmt).emit(fmt)


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
@click.option("--mfu", type=FiniteFloatParam(0, 1, min_open=True), help=MFU_HELP)
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
    from sora_compute.cli_plan import sweep_document

    sweep_document(models, resolutions, durations, fps_list, gpu_list, counts, samples, steps, cfg, mfu,
                   fmt).emit(fmt)


@cli.command()
@click.argument("recipe", default="open-sora-2.0")
@click.option("--gpu", "gpu_list", help="GPU type (default: the recipe's); a comma-separated list compares the types")
@click.option("--days", "--deadline-days", "days", type=DEADLINE_DAYS,
              help="deadline: the fewest GPUs that finish in this many days, every stage's grown (or shrunk) "
              "by one factor as its batch allows (samples kept)")
@click.option("--layouts", is_flag=True, help="the fastest layout of each stage (layout search at its GPUs)")
@click.option("--compare-gpus", is_flag=True, help="the whole recipe on every GPU type in the catalog, each stage's "
              "layout searched on each: cost and days, cheapest first")
@click.option("--price", type=POSITIVE, help="USD per GPU-hour (default: the recipe's, else the catalog's)")
@click.option("--by", type=click.Choice(["stage", "bucket", "breakdown"]), default="stage", show_default=True,
              help="rows: per stage, per (stage, bucket), or per stage and part (DiT, VAE, text, overheads)")
@click.option("--dump", is_flag=True, help="print the recipe itself (YAML; JSON with --format json)")
@FORMAT
@friendly_errors
def recipe(recipe: str, gpu_list: str | None, days: float | None, layouts: bool, compare_gpus: bool,
           price: float | None, by: str, dump: bool, fmt: str) -> None:
    """A training recipe (a preset from sora_compute/presets/recipes, or a YAML/JSON file): per stage the samples,
    tokens and FLOPs, and from the time model the GPU-days, wall-clock days, cost, energy, tokens/s per GPU and MFU;
    --days for the GPUs that meet a deadline, --layouts for each stage's fastest layout, --gpu a,b,c or
    --compare-gpus for the cheapest GPU type.

    \b
    Example:
      sora-compute recipe open-sora-2.0
      sora-compute recipe open-sora-2.0 --by breakdown
      sora-compute recipe open-sora-2.0 --deadline-days 10
      sora-compute recipe open-sora-2.0 --layouts
      sora-compute recipe my_recipe.yaml --gpu h100-sxm,h200,b200
      sora-compute recipe sora --compare-gpus
    """
    from sora_compute.cli_recipe import recipe_document

    recipe_document(recipe, gpu_list, days, price, by, dump, fmt, layouts=layouts,
                    compare_gpus=compare_gpus).emit(fmt)


# ------------------------------------------------------------------------------------------------
# serve: multi-GPU inference layouts of one video (sora_compute/cli_serve.py builds the document)
# ------------------------------------------------------------------------------------------------

@cli.command()
@click.argument("preset", default="hunyuanvideo")
@click.option("--resolution", help=RESOLUTION_HELP)
@click.option("--frames", type=click.IntRange(1, 2**31), help="number of frames (a causal VAE takes 1 + t*k)")
@click.option("--duration", type=FiniteFloatParam(0, 3600, min_open=True), help="seconds (snapped to a frame count)")
@click.option("--fps", type=FiniteFloatParam(0, 240, min_open=True), help=FPS_HELP)
@click.option("--gpu", default="h100-sxm", show_default=True, help="GPU type (see `sora-compute gpus`)")
@click.option("--gpus", "count", type=click.IntRange(1, 64), default=8, show_default=True,
              help="GPUs to serve on: layouts of every divisor per video, replicas for the rest")
@click.option("--steps", type=click.IntRange(1, 10000), help="sampling steps (default: the preset's own)")
@click.option("--cfg/--no-cfg", default=None, help="classifier-free guidance pair (default: the preset's own)")
@click.option("--layout", help="pin one layout instead of searching: cfg=2,ulysses=2,ring=2,pipefusion=1,"
                               "patches=4,fsdp=2,vae-parallel (any subset)")
@click.option("--kernel", type=click.Choice(["fa2", "fa3", "cudnn", "math"]), default="fa2", show_default=True,
              help="attention kernel")
@click.option("--precision", type=click.Choice(["bf16", "fp16", "fp8"]), default="bf16", show_default=True)
@click.option("--price", type=FiniteFloatParam(0, 1e4, min_open=True), help="USD per GPU-hour (default: catalog)")
@click.option("--top", type=click.IntRange(1, 1000), default=10, show_default=True, help="layouts shown")
@TEXT_ENCODER_DTYPE
@FORMAT
@friendly_errors
def serve(preset: str, resolution: str | None, frames: int | None, duration: float | None, fps: float | None,
          gpu: str, count: int, steps: int | None, cfg: bool | None, layout: str | None, kernel: str,
          precision: str, price: float | None, top: int, text_encoder_dtype: str | None, fmt: str) -> None:
    """Multi-GPU inference of one video: every layout of --gpus GPUs (CFG parallel, Ulysses, Ring, PipeFusion,
    FSDP weights, parallel VAE; replicas of smaller layouts) timed by the per-op model on each GPU's share with its
    communication and serial parts, sized in memory per GPU, ranked by latency and by cost per video; the best one's
    breakdown and the latency against GPUs per video.

    \b
    Example:
      sora-compute serve hunyuanvideo --gpu h100-sxm --gpus 8
      sora-compute serve wan2.1-14b --gpu h20 --gpus 8 --layout ulysses=8,fsdp=8
    """
    from sora_compute.cli_serve import serve_document

    serve_document(preset=preset, resolution=resolution, frames=frames, duration=duration, fps=fps, gpu=gpu,
                   count=count, steps=steps, cfg=cfg, layout=layout, kernel=kernel, precision=precision,
                   price=price, top=top, text_encoder_dtype=text_encoder_dtype, fmt=fmt).emit(fmt)


# ------------------------------------------------------------------------------------------------
# demand: a market of generated video -> GPUs, power, dollars (sora_compute/cli_demand.py builds the document)
# ------------------------------------------------------------------------------------------------

@cli.command()
@click.argument("scenario", default="factorial-funds-2024")
@click.option("--model", help="model preset that generates the video (default: the scenario's)")
@click.option("--gpu", help="GPU type that serves it (see `sora-compute gpus`)")
@click.option("--gpus-per-video", type=click.IntRange(1, 4096), help="GPUs that generate one video together")
@click.option("--mfu", type=FiniteFloatParam(0, 1, min_open=True), help=MFU_HELP)
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
