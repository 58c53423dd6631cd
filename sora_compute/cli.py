"""``sora-compute``: the command-line entry point (click).

Every bad input ends in one line on stderr naming the problem, and exit status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click
import pandas as pd
from pydantic import ValidationError

from sora_compute import __version__
from sora_compute.presets import UnknownPresetError, all_presets, load_preset
from sora_compute.specs import VideoShapeError

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
