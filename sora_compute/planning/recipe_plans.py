"""Inverse questions on a training recipe: the GPUs that finish it by a deadline, the fastest layout of each stage,
the cheapest GPU type for it.

GPUs for a deadline keep each stage's samples and grow its GPUs by one factor s, as the stage's batch allows:

- a global-batch stage keeps its global batch and iterations (strong scaling: each rank gets fewer samples, so the
  fixed costs of a step, communication, bubble and optimizer, weigh more): its data-parallel size grows to the
  smallest divisor of the global batch at or above dp x s that fills whole nodes (tp x cp x pp kept; any divisor
  when none does); it cannot grow past dp = global batch; a ``layout: search`` stage is searched again at the power
  of two at or above gpus x s (powers of two split power-of-two batches; a count that splits none would run on the
  power of two below, the rest idle);
- a bucket table keeps its per-rank batches (the only batch it states): dp grows to ceil(dp x s) (rounded up to fill
  whole nodes once a stage spans one: a partial node is timed at its few GPUs' share of the NICs) and the
  iterations shrink to ceil(iterations x dp / dp') so the samples stay (up to that rounding); the global batch
  grows with dp and each iteration waits for the slowest of more ranks.

Fewer GPUs than the recipe's (a deadline it beats) keep only plans whose given layouts still fit in memory per GPU
(``recipe_layouts.memory_misfit``: ZeRO shards over fewer ranks); searched stages are checked by their search.

Every candidate is re-estimated by the recipe time path (``recipe_time``); the fewest-GPU factor is found by growing
s until the deadline holds and bisecting down to within 1% of s (wall-clock days assumed non-increasing in s, up to
the factor at which no layout fits a stage's batch any more: a factor past it is bisected back, never reported).
When every stage is at the most GPUs its batch can use and the deadline still does not hold, ``DeadlineError`` says
so with the fastest finite plan's days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from sora_compute.evaluate.comm import topology_of
from sora_compute.evaluate.kernels import efficiencies
from sora_compute.finite import require_finite
from sora_compute.hardware import gpu_names
from sora_compute.planning.parallel import training_bases
from sora_compute.planning.recipe import bucket_workload
from sora_compute.planning.recipe_layouts import NoLayoutError, memory_misfit, search_stage
from sora_compute.planning.recipe_spec import MAX_COUNT, Recipe, RecipeStage, recipe_profile, resolve_recipe
from sora_compute.planning.recipe_time import RecipeEstimate, estimate_recipe

__all__ = ["MAX_DEADLINE_DAYS", "DeadlineError", "DeadlinePlan", "scale_recipe", "recipe_gpus_for_days",
           "kernel_on_gpu", "fastest_layouts",
           "compare_gpu_types", "layout_label", "attention_timed_with"]


MAX_DEADLINE_DAYS = 36525  # 100 years: a longer deadline is a typo


class DeadlineError(ValueError):
    """No GPU count finishes the recipe by the deadline (the message gives the fastest plan's days)."""


def _divisor_at_least(n: int, target: int, step: int = 1) -> int:
    """The smallest divisor of ``n`` that is >= ``target`` and a multiple of ``step`` (``n`` itself when none is
    smaller; without ``step`` when no divisor is a multiple of it)."""
    if target >= n:
        return n
    for d in range(max(1, target), min(n, target + 1_000_000)):
        if n % d == 0 and d % step == 0:
            return d
    return n if step == 1 or n % step == 0 else _divisor_at_least(n, target)


def _node_step(group: int, node: int, dp: int) -> int:
    """The dp multiple that fills whole nodes of ``node`` GPUs (ranks of ``group`` GPUs), once dp x group reaches a
    node: node / gcd(group, node) (1 below a node). A partial node is timed at its few GPUs' share of the NICs."""
    return node // math.gcd(group, node) if dp * group >= node else 1


def _scaled_stage(stage: RecipeStage, factor: float, node: int) -> RecipeStage:
    group = stage.tp * stage.cp * stage.pp
    update: dict = {}
    if stage.layout == "search" and stage.global_batch is not None:  # a power of two: the search splits it
        update["gpus"] = 1 << max(0, math.ceil(math.log2(max(1.0, stage.gpus * factor)) - 1e-9))
    elif stage.global_batch is not None:  # strong scaling: the batch and iterations stay, dp divides the batch
        target = max(1, math.ceil(stage.dp * factor - 1e-9))
        dp = _divisor_at_least(stage.global_batch, target, _node_step(group, node, target))
        update["gpus"] = dp * group
    else:  # a bucket table: per-rank batches stay, more ranks run fewer iterations (whole nodes)
        dp = max(1, math.ceil(stage.dp * factor - 1e-9))
        step = _node_step(group, node, dp)
        dp = -(-dp // step) * step
        update.update(gpus=dp * group, iterations=max(1, math.ceil(stage.iterations * stage.dp / dp)))
    if update["gpus"] > MAX_COUNT:
        raise DeadlineError(f"days: stage {stage.name!r} would need more than {MAX_COUNT:,} GPUs")
    return RecipeStage.model_validate({**stage.model_dump(), **update})


def scale_recipe(recipe: Recipe, factor: float) -> Recipe:
    """``recipe`` with every stage's GPUs grown (or shrunk) by ``factor`` as its batch allows (module docstring)."""
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(f"factor: expected a finite positive number, got {factor!r}")
    try:
        node = topology_of(recipe_profile(recipe.gpu)).gpus_per_node
    except ValueError:  # a profile without a topology: one GPU per node as far as rounding goes
        node = 1
    return recipe.model_copy(update={"stages": tuple(_scaled_stage(s, factor, node) for s in recipe.stages)})


@dataclass(frozen=True)
class DeadlinePlan:
    """The recipe scaled to a deadline, its estimate, and the estimate at the recipe's own GPU counts."""

    recipe: Recipe
    estimate: RecipeEstimate
    base: RecipeEstimate
    days: float

    @property
    def efficiency(self) -> float:
        """GPU-days per sample at the recipe's own counts / GPU-days per sample at the deadline's counts (below 1:
        more GPUs, each less efficient; per sample, since rounding iterations up may add a few)."""
        b, t = self.base.total, self.estimate.total
        return (b["gpu_days"] / b["samples"]) / (t["gpu_days"] / t["samples"])


def _capped(rc: Recipe) -> bool:
    """Every stage at the most GPUs its batch can use: global-batch stages with a given layout at dp = the batch
    (bucket tables and searched stages can always be tried on more)."""
    return all(s.global_batch is not None and s.layout == "given" and s.dp >= s.global_batch for s in rc.stages)


def recipe_gpus_for_days(recipe: Recipe | str, days: float, gpu: str | None = None,
                         max_rounds: int = 40) -> DeadlinePlan:
    """The recipe with the fewest GPUs (one growth factor over its stages) that finishes within ``days`` of wall-clock,
    all stages one after another (module docstring); DeadlineError when no count does."""
    require_finite("days", days, positive=True)
    if days > MAX_DEADLINE_DAYS:
        raise ValueError(f"days: expected at most {MAX_DEADLINE_DAYS:,} (100 years), got {days:g}")
    rc = resolve_recipe(recipe)
    if gpu is not None:
        rc = rc.with_gpu(gpu)
    base = estimate_recipe(rc, idle_ok=True)
    seen: dict[str, tuple[Recipe, float, RecipeEstimate | None]] = {}
    tried: dict[float, float] = {}  # factor -> wall-clock days

    def at(f: float) -> tuple[Recipe, float, RecipeEstimate | None]:
        scaled = scale_recipe(rc, f)
        key = scaled.model_dump_json()
        if key not in seen and f < 1 and any(memory_misfit(scaled, s) for s in scaled.stages if s.layout == "given"):
            seen[key] = (scaled, math.inf, None)  # fewer GPUs than the recipe's: a given layout must still fit
        if key not in seen:
            try:
                est: RecipeEstimate | None = estimate_recipe(scaled, idle_ok=True)
                seen[key] = (scaled, est.total["wall_days"], est)  # type: ignore[union-attr]
            except NoLayoutError:
                seen[key] = (scaled, math.inf, None)
        tried[f] = seen[key][1]
        return seen[key]

    # each factor tried is slow (finite days > the deadline), meets it, or is over (no layout of that many GPUs fits
    # the batch); along s: slow < meets < over. lo: the largest slow factor, hi: the smallest that meets, cap: the
    # smallest over (0 / inf: none yet)
    lo, hi, cap, f = 0.0, math.inf, math.inf, base.total["wall_days"] / days
    for _ in range(max_rounds):
        scaled, wall, _ = at(f)
        if wall <= days:
            hi = f
        elif math.isinf(wall) and f >= 1:  # no layout of that many GPUs splits the batch
            cap = f
        else:
            lo = f
        if math.isfinite(hi):  # shrink (no slow factor yet) or bisect down to within 1%
            if lo > 0 and (hi / lo <= 1.01 or at(lo)[0] == at(hi)[0]):
                break
            f = math.sqrt(lo * hi) if lo > 0 else hi / 2
            if lo == 0 and at(f)[0] == at(hi)[0]:  # fewer would be the same plan: the fewest GPUs
                break
        elif lo > 0 and _capped(at(lo)[0]):
            break
        elif math.isfinite(cap):  # between the slowest and no layout at all
            if lo > 0 and (cap / lo <= 1.01 or at(lo)[0] == at(cap)[0]):
                break
            f = math.sqrt(lo * cap) if lo > 0 else cap / 2
        else:  # grow until the deadline holds
            f = lo * (max(1.25, at(lo)[1] / days) if math.isfinite(at(lo)[1]) else 2)
    if not math.isfinite(hi):  # days are not monotone past the best layouts: walk down from the fastest tried
        g = min(tried, key=lambda k: tried[k])
        for _ in range(max_rounds):
            if at(g / 2)[1] >= at(g)[1] or at(g / 2)[0] == at(g)[0]:
                break
            g /= 2
            if at(g)[1] <= days:
                hi = g
                break
    if not math.isfinite(hi):
        fast = min([v for v in seen.values() if math.isfinite(v[1])] or [(rc, base.total["wall_days"], base)],
                   key=lambda v: v[1])
        laid = ", ".join(f"{s.name} {s.gpus:,} GPUs" for s in fast[0].stages)
        raise DeadlineError(f"days: {days:g} days cannot be met: the fastest plan tried takes {fast[1]:,.4g} days "
                            f"({laid}); more GPUs do not fit the stages' batches (a global-batch stage cannot use "
                            "more data-parallel ranks than its batch has samples) or stop helping")
    best, _, est = at(hi)
    assert est is not None
    return DeadlinePlan(best, est, base, days)


def layout_label(stage: RecipeStage) -> str:
    """A stage's layout in words: DP x TP x CP (kind) x PP (interleaving), ZeRO stage."""
    cu, cr = stage.cp_split
    cp = f"CP{stage.cp}" + (f" ({cu}u{cr}r)" if cu > 1 and cr > 1 else "u" if cu > 1 else "")
    return (f"DP{stage.dp} TP{stage.tp} {cp} PP{stage.pp}{f'v{stage.vpp}' if stage.vpp > 1 else ''} "
            f"ZeRO-{stage.zero}")


def fastest_layouts(recipe: Recipe | str) -> tuple[RecipeEstimate, pd.DataFrame]:
    """Every stage laid out by the layout search at its own GPUs (``recipe_layouts``; a bucket table keeps its dp;
    a stage no layout fits keeps the one given and says why), the estimate at those layouts, and per stage the given
    and the fastest layout with seconds per iteration and wall-clock days."""
    rc = resolve_recipe(recipe)
    given = estimate_recipe(rc)
    laid, why = [], []
    for s in rc.stages:
        try:
            laid.append(search_stage(rc, s)[0])
            why.append("")
        except NoLayoutError as e:
            laid.append(s)
            why.append(str(e))
    fast = estimate_recipe(rc.model_copy(update={"stages": tuple(laid)}))
    rows = []
    for a, b, w, ga, fb in zip(given.recipe.stages, laid, why, given.stages.to_dict(orient="records"),
                               fast.stages.to_dict(orient="records"), strict=True):
        rows.append({"stage": a.name, "gpus": a.gpus, "given_layout": layout_label(a),
                     "given_s_per_iteration": ga["seconds_per_iteration"], "given_wall_days": ga["wall_days"],
                     "fastest_layout": layout_label(b) if not w else "(as given)",
                     "fastest_s_per_iteration": fb["seconds_per_iteration"], "fastest_wall_days": fb["wall_days"],
                     "speedup": ga["wall_days"] / fb["wall_days"], "why_as_given": w})
    return fast, pd.DataFrame(rows)


def kernel_on_gpu(rc: Recipe) -> tuple[Recipe, str]:
    """``rc`` with FlashAttention-2 where its GPU's kernel tables have no points for its attention kernel (FA3 on an
    A100, an RTX 4090), and a note saying so ('' when the recipe's kernel is kept); a GPU whose tables have no
    attention points at all times any kernel at its default MFU: ``rc`` kept, the note says so. The probe: the time
    model's training walk of the first bucket at micro-batch 1 (``training_bases`` leaves out a kernel it cannot
    time)."""
    used = attention_timed_with(rc)
    if used != rc.attention_kernel:
        return rc, f"{rc.gpu} has no attention kernel-table points: attention cores timed at its {used}"
    if rc.attention_kernel == "fa2":
        return rc, ""
    s = rc.stages[0]
    w = bucket_workload(rc, s, s.buckets[0])
    if training_bases(w, recipe_profile(rc.gpu), (1,), ("none",), (rc.attention_kernel,), rc.precision):
        return rc, ""
    return rc.model_copy(update={"attention_kernel": "fa2"}), (
        f"{rc.gpu} has no kernel-table points for {rc.attention_kernel}: timed with FlashAttention-2 (fa2)")


def attention_timed_with(rc: Recipe) -> str:
    """What the time model times ``rc``'s attention cores with on its GPU: its attention kernel's table points, or
    the profile's default MFU where the GPU's tables have no attention points (TPU, MI300X, B200)."""
    return efficiencies(recipe_profile(rc.gpu), rc.precision).attention_label(rc.attention_kernel)


def _on_gpu(rc: Recipe, gpu: str) -> dict:
    """The recipe's totals on ``gpu`` and what its attention was timed with (``kernel_on_gpu``,
    ``attention_timed_with``)."""
    on, _ = kernel_on_gpu(rc.with_gpu(gpu))
    return {**estimate_recipe(on, idle_ok=True).total, "attention_kernel": attention_timed_with(on)}


def compare_gpu_types(recipe: Recipe | str, gpus: list[str] | None = None, search: bool = False) -> pd.DataFrame:
    """The whole recipe on each GPU type (default: every catalog type): GPU-days, wall-clock days, cost, energy, MFU,
    cheapest first, each at its catalog price and with the recipe's attention kernel (FlashAttention-2 where the GPU
    has no kernel-table points for it). Same GPU counts and layouts; ``search``: each stage's layout searched on each
    type (memory per GPU checked by the search); without it a type the given layouts do not fit in memory
    (``memory_misfit``) is left out. A type left out is listed with why (``attrs['skipped']``), not priced."""
    rc = resolve_recipe(recipe).model_copy(update={"price_usd_per_hour": None})
    if search:
        rc = rc.model_copy(update={"stages": tuple(s.model_copy(update={"layout": "search"}) for s in rc.stages)})
    rows, skipped = [], []
    for g in (gpus if gpus is not None else gpu_names()):
        misfit = [] if search else [m for m in (memory_misfit(rc.with_gpu(g), s) for s in rc.stages
                                                if s.layout == "given") if m]  # a searched stage: its search
        if misfit:  # the recipe's own layouts: a type they do not fit is not priced
            skipped.append({"gpu": g, "why": "; ".join(misfit)})
            continue
        try:
            t = _on_gpu(rc, g)
        except NoLayoutError as e:
            skipped.append({"gpu": g, "why": str(e)})
            continue
        except ValueError as e:  # every catalog type asked: one that cannot be timed is left out, with why
            if gpus is not None:
                raise
            skipped.append({"gpu": g, "why": str(e)})
            continue
        rows.append({"gpu": g, "attention_kernel": t["attention_kernel"],
                     **{k: t[k] for k in ("gpu_days", "wall_days", "cost_usd", "energy_mwh", "mfu",
                                          "tokens_per_s_per_gpu")}})
    out = pd.DataFrame(rows).sort_values("cost_usd", ignore_index=True) if rows else pd.DataFrame(
        columns=["gpu", "attention_kernel", "gpu_days", "wall_days", "cost_usd", "energy_mwh", "mfu",
                 "tokens_per_s_per_gpu"])
    out["cheapest"] = out.index == 0
    out.attrs["skipped"] = skipped
    return out
