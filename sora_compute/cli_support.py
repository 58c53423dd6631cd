"""Shared pieces of the ``sora-compute`` commands, for every command to reuse.

- one-line errors: ``UsageError`` (exit 2), ``friendly_errors`` (validation / lookup / range errors become one line
  naming the field), ``validation_message`` (every pydantic error, short, on one line);
- options: ``FiniteFloatParam`` (a click type that refuses inf / NaN, with an optional range), ``COUNT`` bounds for
  integers that reach fixed-width arithmetic, ``split_names`` (comma lists, empty refused, duplicates dropped),
  ``parse_axis`` (comma lists and ``START..STOP:STEP`` ranges);
- video shapes: ``RESOLUTIONS``, ``parse_resolution`` and ``snap_resolution`` (named sizes snapped to a model's
  grid, with the note that says so);
- output: ``Document`` (prose + named tables + units + assumptions + notes) rendered by ``--format``
  table | markdown | csv | json, with "—" for a missing value and no non-finite number ever printed;
- ``run_cli``: the console entry point (click errors as one line, exit 2; a closed pipe ends quietly).
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar

import click
import numpy as np
import pandas as pd
from pydantic import ValidationError

from sora_compute.finite import MAX_EXACT_INT
from sora_compute.hardware import UnknownGPUError
from sora_compute.planning import ScenarioFileError, UnknownScenarioError
from sora_compute.presets import UnknownPresetError
from sora_compute.specs import MAX_SIDE_PX, RESOLUTIONS, ModelSpec, VideoShapeError, VideoSpec
from sora_compute.units import fmt_sci

__all__ = ["UsageError", "validation_message", "friendly_errors", "FiniteFloatParam", "FINITE", "POSITIVE", "COUNT",
           "FORMAT", "FORMATS", "split_names", "parse_axis", "RESOLUTIONS", "parse_resolution",
           "snap_resolution", "with_text_tokens", "video_from_options", "shape_query", "Document", "humanize",
           "MISSING", "check_finite", "run_cli"]

F = TypeVar("F", bound=Callable[..., Any])
MISSING = "—"
MAX_AXIS_POINTS = 10_000


class UsageError(click.ClickException):
    """One-line error, exit status 2."""

    exit_code = 2


def validation_message(e: ValidationError) -> str:
    """Every error of a pydantic ValidationError, short, on one line: ``field: message; field: message``. A list
    that is too short only because its items failed (pydantic's 'at least 1 item after validation') is left out:
    the items' errors say why."""
    errors = e.errors()
    inner = {tuple(err["loc"])[:n] for err in errors for n in range(len(err["loc"]))}
    parts = []
    for err in errors:
        if err["type"] == "too_short" and tuple(err["loc"]) in inner:
            continue
        where = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(dict.fromkeys(parts))


def friendly_errors(fn: F) -> F:
    """Turn validation, lookup and range errors into one-line usage errors (exit 2); a closed pipe passes through."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BrokenPipeError:
            raise
        except ValidationError as e:
            raise UsageError(validation_message(e)) from None
        except (UnknownPresetError, UnknownGPUError, UnknownScenarioError, VideoShapeError, ScenarioFileError) as e:
            raise UsageError(str(e)) from None
        except ValueError as e:  # planner arguments that cannot work together (e.g. tp not dividing the heads)
            raise UsageError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
        except OverflowError:
            raise UsageError("a result exceeds the float64 range: use smaller inputs") from None
        except OSError as e:  # an output folder that cannot be created or written
            raise UsageError(f"cannot write {e.filename or ''}: {e.strerror or e}") from None

    return wrapper  # type: ignore[return-value]


class FiniteFloatParam(click.ParamType):
    """A float option that refuses inf and NaN (and, optionally, values outside a range)."""

    name = "number"

    def __init__(self, min: float | None = None, max: float | None = None, min_open: bool = False,
                 max_open: bool = False) -> None:
        self.min, self.max, self.min_open, self.max_open = min, max, min_open, max_open

    def _range(self) -> str:
        lo = "" if self.min is None else f"{self.min:g} {'<' if self.min_open else '<='} "
        hi = "" if self.max is None else f" {'<' if self.max_open else '<='} {self.max:g}"
        return f"{lo}x{hi}"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            x = float(value)
        except (TypeError, ValueError, OverflowError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(x):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        low = self.min is not None and (x <= self.min if self.min_open else x < self.min)
        high = self.max is not None and (x >= self.max if self.max_open else x > self.max)
        if low or high:
            self.fail(f"{x:g} is not in the range {self._range()}", param, ctx)
        return x


FINITE = FiniteFloatParam()
POSITIVE = FiniteFloatParam(0, min_open=True)
COUNT = click.IntRange(1, MAX_EXACT_INT)  # counts that may reach float64 / int64 arithmetic
FORMATS = ("table", "json", "csv", "markdown")
FORMAT = click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                      help="output format: table, json (raw numbers, units, assumptions), csv (every section), "
                           "markdown")


def split_names(text: str, what: str) -> list[str]:
    """Comma-separated names, blanks skipped, duplicates dropped (first kept); none at all is an error."""
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise UsageError(f"{what}: expected one or more comma-separated names, got {text!r}")
    return names


def _number(text: str, what: str, integer: bool) -> float:
    try:
        x = float(text)
    except ValueError:
        kind = "integers" if integer else "numbers"
        raise UsageError(f"{what}: expected comma-separated {kind} or START..STOP:STEP, got {text!r}") from None
    if not math.isfinite(x) or x <= 0:
        raise UsageError(f"{what}: expected positive finite numbers, got {text!r}")
    if integer and (x != int(x) or x > MAX_EXACT_INT):
        raise UsageError(f"{what}: expected positive integers up to {MAX_EXACT_INT}, got {text!r}")
    return x


def parse_axis(text: str, what: str, integer: bool = False) -> list[Any]:
    """A sweep axis: comma-separated positive numbers and ranges ``START..STOP`` or ``START..STOP:STEP`` (step 1 by
    default; STOP included when the steps land on it), e.g. ``5..60:5`` -> 5, 10, ..., 60. Duplicates dropped."""
    values: list[float] = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        if ".." in item:
            span, _, step_text = item.partition(":")
            start_text, _, stop_text = span.partition("..")
            start, stop = _number(start_text, what, integer), _number(stop_text, what, integer)
            step = _number(step_text, what, integer) if step_text else 1.0
            if stop < start:
                raise UsageError(f"{what}: range {item!r} runs backwards")
            n = math.floor((stop - start) / step * (1 + 1e-12)) + 1
            if n + len(values) > MAX_AXIS_POINTS:
                raise UsageError(f"{what}: {item!r} has more than {MAX_AXIS_POINTS:,} points")
            values.extend(round(start + i * step, 12) for i in range(n))
        else:
            values.append(_number(item, what, integer))
        if len(values) > MAX_AXIS_POINTS:
            raise UsageError(f"{what}: more than {MAX_AXIS_POINTS:,} points")
    if not values:
        raise UsageError(f"{what}: expected one or more numbers, got {text!r}")
    out = list(dict.fromkeys(values))
    return [int(v) for v in out] if integer else out


def parse_resolution(text: str) -> tuple[int, int, str | None]:
    """'1280x720' -> (1280, 720, None); a name such as '720p' -> (1280, 720, '720p')."""
    key = text.strip().lower()
    if key in RESOLUTIONS:
        return (*RESOLUTIONS[key], key)
    parts = key.split("x")
    if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
        w, h = (int(p) for p in parts)
        if 0 < w <= MAX_SIDE_PX and 0 < h <= MAX_SIDE_PX:
            return w, h, None
        raise UsageError(f"resolution: width and height must be 1 to {MAX_SIDE_PX:,} pixels; got {text!r}")
    raise UsageError(f"resolution: expected WIDTHxHEIGHT in pixels (e.g. 1280x720) or one of "
                     f"{', '.join(RESOLUTIONS)}; got {text!r}")


def snap_resolution(model: ModelSpec, text: str, snap_explicit: bool = False) -> tuple[int, int, str | None]:
    """(width, height, note): a named resolution (or, with ``snap_explicit``, any size) rounded to the nearest
    multiple of the model's grid; the note says so when the size changed ("1080p -> 1920x1088 for sora's 16-px
    grid"). Explicit sizes are otherwise returned as given (a size the model cannot take is then an error)."""
    w, h, name = parse_resolution(text)
    if name is None and not snap_explicit:
        return w, h, None
    sw, sh = model.grid_px
    W, H = max(sw, round(w / sw) * sw), max(sh, round(h / sh) * sh)
    if (w, h) == (W, H):
        return w, h, None
    grid = f"{sw}-px" if sw == sh else f"{sw}x{sh}-px"
    return W, H, f"{text.strip()} -> {W}x{H} for {model.name}'s {grid} grid"


def with_text_tokens(model: ModelSpec, text_tokens: int | None) -> ModelSpec:
    """The model with ``text_tokens`` prompt tokens instead of its native length (validated)."""
    if text_tokens is None:
        return model
    return ModelSpec.model_validate({**model.model_dump(), "text_tokens": text_tokens})


def video_from_options(model: ModelSpec, native: VideoSpec, resolution: str | None, frames: int | None,
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


def shape_query(video: VideoSpec) -> dict[str, Any]:
    return {"width": video.width, "height": video.height, "num_frames": video.num_frames, "fps": video.fps,
            "duration_s": video.duration_s}


# ------------------------------------------------------------------------------------------------
# Output
# ------------------------------------------------------------------------------------------------

def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return MISSING
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        x = float(v)
        if x == 0:
            return "0"
        if x == int(x) and abs(x) < 1e15:
            return f"{int(x):,}"
        if 1e3 <= abs(x) < 1e6:
            return f"{x:,.0f}"
        return f"{x:.4g}" if 1e-3 <= abs(x) < 1e3 else fmt_sci(x, 4)
    s = str(v)
    return s if s else MISSING


def humanize(df: pd.DataFrame) -> pd.DataFrame:
    """Every cell as a human-readable string: thousands separators, 4 significant digits, "—" where missing."""
    return pd.DataFrame({c: [_cell(v) for v in df[c]] for c in df.columns}, columns=list(df.columns))


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, pd.DataFrame):
        return [_jsonable(r) for r in v.to_dict(orient="records")]
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (float, np.floating)):
        x = float(v)
        return None if math.isnan(x) else x
    if v is None or isinstance(v, (int, str)):
        return v
    if hasattr(v, "model_dump"):
        return _jsonable(v.model_dump())
    return str(v)


def check_finite(value: Any, where: str = "") -> None:
    """Raise a one-line UsageError naming the first infinite number inside ``value`` (NaN marks a missing value)."""
    if isinstance(value, dict):
        for k, v in value.items():
            check_finite(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_finite(v, f"{where}[{i}]")
    elif isinstance(value, pd.DataFrame):
        for c in value.columns:
            for i, v in enumerate(value[c]):
                check_finite(v, f"{where}[{i}].{c}")
    elif isinstance(value, (float, np.floating)) and math.isinf(float(value)):
        raise UsageError(f"{where}: the result is {float(value)} (beyond float64): use smaller inputs")


@dataclass
class _Block:
    kind: str  # "text" | "table"
    text: str = ""
    name: str = ""
    raw: pd.DataFrame | None = None
    human: pd.DataFrame | None = None


@dataclass
class Document:
    """What one command prints, built once and rendered in any ``--format``.

    ``text`` adds prose (table and markdown formats); ``table`` adds a named section with its raw numbers (CSV, JSON)
    and a human-readable view (table, markdown; humanized when not given); ``data`` adds a JSON-only value;
    ``note`` a remark about the query (a snapped resolution), printed first (stderr for CSV)."""

    command: str
    query: dict[str, Any] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    assumptions: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    blocks: list[_Block] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def note(self, text: str | None) -> None:
        if text and text not in self.notes:
            self.notes.append(text)

    def text(self, text: str) -> None:
        self.blocks.append(_Block("text", text=text))

    def table(self, name: str, raw: pd.DataFrame, human: pd.DataFrame | None = None, title: str = "") -> None:
        self.blocks.append(_Block("table", text=title, name=name, raw=raw.reset_index(drop=True),
                                  human=humanize(raw) if human is None else human.fillna(MISSING)))

    def data(self, name: str, value: Any) -> None:
        self.extra[name] = value

    def tables(self) -> list[_Block]:
        return [b for b in self.blocks if b.kind == "table"]

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"command": self.command, "query": self.query, "units": self.units,
                               "assumptions": self.assumptions, "notes": self.notes}
        out.update({b.name: b.raw for b in self.tables()})
        out.update(self.extra)
        return out

    def render(self, fmt: str) -> str:
        check_finite(self.payload())
        if fmt == "json":
            return json.dumps(_jsonable(self.payload()), indent=2, ensure_ascii=False) + "\n"
        if fmt == "csv":
            parts = [b.raw.to_csv(index=False) for b in self.tables() if b.raw is not None]
            if len(parts) == 1:
                return parts[0]
            return "\n".join(f"# {b.name}\n{p}" for b, p in zip(self.tables(), parts, strict=True))
        out: list[str] = []
        md = fmt == "markdown"
        for n in self.notes:
            out.append(f"> note: {n}\n" if md else f"note: {n}")
        for b in self.blocks:
            if b.kind == "text":
                out.append(_md_text(b.text) if md else b.text)
                continue
            assert b.human is not None
            if b.text:
                out.append(f"**{b.text}**\n" if md else b.text)
            if md:
                out.append(b.human.to_markdown(index=False, disable_numparse=True) + "\n")
            else:
                out.append(b.human.to_string(index=False) if len(b.human) else "(none)")
        return "\n".join(out).rstrip("\n") + "\n"

    def emit(self, fmt: str) -> None:
        text = self.render(fmt)
        if fmt == "csv":
            for n in self.notes:
                click.echo(f"note: {n}", err=True)
        click.echo(text, nl=False)


def _md_text(text: str) -> str:
    """Prose for markdown: indented lines (details under a heading line) become list items."""
    lines = [f"- {line.strip()}" if line.startswith(" ") and line.strip() else line for line in text.splitlines()]
    return "\n".join(lines).strip("\n") + "\n"


def progress_hidden() -> bool:
    """Progress bars only on a terminal: nothing stray on a piped or captured stderr."""
    return not sys.stderr.isatty()


def run_cli(group: click.Group, args: Iterable[str] | None = None) -> None:
    """Run ``group``: click errors become one line on stderr and exit status 2; output into a closed pipe
    (``| head``) ends quietly. Numerical RuntimeWarnings are not printed: every result is checked for inf before
    it is printed (``check_finite``), so an overflow ends as one line naming the field."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            group.main(args=list(args) if args is not None else None, standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.Abort:  # pragma: no cover
        sys.exit(130)
    except click.ClickException as e:
        click.echo(f"Error: {e.format_message().splitlines()[0]}", err=True)
        sys.exit(2 if isinstance(e, click.UsageError) else e.exit_code)
    except BrokenPipeError:
        _quiet_pipe()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_pipe()


def _quiet_pipe() -> None:
    """The reader went away (``| head``): point stdout at /dev/null so the final flush is silent; exit 0."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)
