"""``sora-compute``: the command-line entry point (click).

Every bad input ends in one line on stderr naming the problem, and exit status 2.
"""

from __future__ import annotations

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
from sora_compute.flops import FVCORE, MATMUL_ONLY, count_dit, count_text_encoder, count_vae_decode, count_vae_encode
from sora_compute.presets import UnknownPresetError, all_presets, load_preset
from sora_compute.specs import ModelSpec, VideoShapeError, VideoSpec

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
        except (UnknownPresetError, VideoShapeError) as e:
            raise UsageError(str(e)) from None

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
    else:
        click.echo(df.to_string(index=False))


FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
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
    rows = []
    for p in all_presets():
        counts = p.model.param_counts()
        rows.append({
            "preset": p.name,
            "dit_params": counts["dit"] if fmt != "table" else _fmt_params(counts["dit"]),
            "vae_params": counts["vae_encoder"] + counts["vae_decoder"] if fmt != "table"
            else _fmt_params(counts["vae_encoder"] + counts["vae_decoder"]),
            "text_params": counts["text_encoder"] if fmt != "table" else _fmt_params(counts["text_encoder"]),
            "resolution": f"{p.video.width}x{p.video.height}",
            "frames": p.video.num_frames,
            "fps": p.video.fps,
            "video_tokens": p.model.latent_shape(p.video).tokens,
            "source": p.source if fmt != "table" else (p.source[:60] + ("..." if len(p.source) > 60 else "")),
        })
    _emit(pd.DataFrame(rows), fmt)


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
    counts = p.model.param_counts()
    latent = p.model.latent_shape(p.video)
    if fmt == "json":
        click.echo(pd.Series({
            "preset": p.name, "source": p.source, "model": p.model.model_dump(), "video": p.video.model_dump(),
            "params": counts, "latent": latent.model_dump(), "video_tokens": latent.tokens,
            "text_tokens": p.model.num_text_tokens,
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
@FORMAT
@friendly_errors
def flops(preset: str, resolution: str | None, frames: int | None, duration: float | None, fps: float | None,
          batch: int, by: str, matmul_only: bool, fmt: str) -> None:
    """Analytic MACs and FLOPs (= 2 x MACs) of one video through each component.

    The DiT row is ONE forward (one denoising step); training and sampling multiply it.

    \b
    Example:
      sora-compute flops sora --resolution 1920x1088 --duration 20
      sora-compute flops dit-xl-2 --by kind
    """
    p = load_preset(preset)
    video = _video_from_options(p.model, p.video, resolution, frames, duration, fps)
    conv = MATMUL_ONLY if matmul_only else FVCORE
    dit = count_dit(p.model, video, batch=batch, convention=conv)
    if by == "component":
        counts = [count_text_encoder(p.model, batch=batch, convention=conv),
                  count_vae_encode(p.model, video, batch=batch, convention=conv), dit,
                  count_vae_decode(p.model, video, batch=batch, convention=conv)]
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
                   f"{dit.shape['tokens']:,} video tokens, batch {batch}; MACs, FLOPs = 2 x MACs")
        df = df.assign(macs=[f"{float(m):.4g}" for m in df["macs"]], flops=[f"{float(f):.4g}" for f in df["flops"]],
                       share=[f"{s:.1%}" for s in df["share"]])
    _emit(df, fmt)


@cli.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("reports/calibration"),
              show_default=True, help="folder for the per-module table (CSV, markdown) and the record")
@click.option("--write-record/--no-write-record", default=False,
              help="also update the calibration record shipped in the package (sora_compute/data)")
def calibrate(out_dir: Path, write_record: bool) -> None:
    """Profile the reference models with fvcore and FlopCounterMode and compare with the analytic counts.

    \b
    Example:
      sora-compute calibrate --out reports/calibration
    """
    from sora_compute import calibrate as cal  # imports fvcore and torch.jit: only when asked

    cases = cal.default_cases()
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
