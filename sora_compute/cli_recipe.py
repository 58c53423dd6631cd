"""The `recipe` command's document (sora_compute/cli.py declares its options)."""

from __future__ import annotations

import click
import pandas as pd
from click.core import ParameterSource

from sora_compute.cli_support import Document, UsageError, split_names
from sora_compute.hardware import resolve_gpu
from sora_compute.planning.recipe_plans import (
    attention_timed_with,
    compare_gpu_types,
    fastest_layouts,
    kernel_on_gpu,
    recipe_gpus_for_days,
)
from sora_compute.planning.recipe_spec import Recipe, dump_recipe, recipe_profile, resolve_recipe
from sora_compute.planning.recipe_time import RecipeEstimate, estimate_recipe
from sora_compute.units import fmt_duration_days, fmt_int, fmt_mwh, fmt_sci, fmt_usd

__all__ = ["recipe_document", "recipe_option_document"]

UNITS = {"*_flops": "FLOPs (= 2 x MACs)", "*_gpu_s": "GPU-seconds", "gpu_seconds": "GPU-seconds",
         "gpu_days": "GPU-days (86,400 GPU-seconds)", "wall_days": "days", "cost_usd": "USD", "energy_mwh": "MWh",
         "tokens": "latent video tokens", "tokens_per_s_per_gpu": "latent tokens per second per GPU",
         "mfu": "model FLOPs / (productive GPU-seconds x peak)", "mfu_wall": "model FLOPs / (GPU-seconds x peak)",
         "seconds_per_iteration": "s (productive)", "*_s": "seconds of one rank's micro-batch on one GPU"}


def _stage_human(est: RecipeEstimate) -> pd.DataFrame:
    s = est.stages
    return pd.DataFrame({
        "stage": s["stage"], "iters": [fmt_int(x) for x in s["iterations"]], "GPUs": [fmt_int(x) for x in s["gpus"]],
        "dp x tp x cp x pp": [f"{a} x {b} x {c} x {d}" for a, b, c, d in zip(s["dp"], s["tp"], s["cp"], s["pp"],
                                                                             strict=True)],
        "images": [fmt_sci(x) for x in s["images"]], "videos": [fmt_sci(x) for x in s["videos"]],
        "tokens": [fmt_sci(x) for x in s["tokens"]], "model FLOPs": [fmt_sci(x) for x in s["model_flops"]],
        "s/iter": [f"{x:.3g}" for x in s["seconds_per_iteration"]], "GPU-days": [fmt_int(x) for x in s["gpu_days"]],
        "wall": [fmt_duration_days(x) for x in s["wall_days"]], "cost": [fmt_usd(x) for x in s["cost_usd"]],
        "tok/s/GPU": [fmt_int(x) for x in s["tokens_per_s_per_gpu"]], "MFU": [f"{x:.0%}" for x in s["mfu"]]})


def _price(rc: Recipe) -> float:
    """USD per GPU-hour the recipe is costed at: its own, else its GPU's catalog price (as ``estimate_recipe``)."""
    if rc.price_usd_per_hour is not None:
        return rc.price_usd_per_hour
    return resolve_gpu(recipe_profile(rc.gpu)).price_usd_per_hour


def _samples_kept(more: float) -> str:
    """The deadline plan's samples against the recipe's, in words (iterations are whole numbers)."""
    return "samples kept" if abs(more) < 5e-4 else f"samples {more:+.1%}: iterations rounded up"


def _why_less(rc: Recipe, efficiency: float) -> str:
    """Why the deadline's GPUs are less (or more) efficient, for the kinds of stage ``rc`` has ('' within 0.5%)."""
    if abs(efficiency - 1) < 5e-3:
        return ""
    if efficiency > 1:
        waits = " and the wait for the slowest rank" if any(s.global_batch is None for s in rc.stages) else ""
        return f" (fewer GPUs: each rank runs more of a step, so communication, bubble, optimizer{waits} weigh less)"
    why = [" (global-batch stages keep their batch and iterations: each GPU gets less of a step, so communication, "
           "bubble and optimizer weigh more)" if any(s.global_batch is not None for s in rc.stages) else "",
           " (bucket tables keep their per-rank batches: more ranks, fewer iterations, each waiting for the slowest "
           "of more ranks)" if any(s.global_batch is None for s in rc.stages) else ""]
    return "".join(why)


def recipe_option_document(recipe: str, applies: tuple[str, ...], gpu_list: str | None, days: float | None,
                           price: float | None, fmt: str) -> Document:
    """What `estimate --recipe` / `plan --recipe` print: the `recipe` command's document, its numbers unchanged.

    ``applies``: the current command's parameters that carry over to a recipe; any other one typed on the command
    line (the scenario argument included) is a usage error, not silently ignored."""
    ctx = click.get_current_context()
    options = {p.name: p.opts[-1] if isinstance(p, click.Option) else p.human_readable_name
               for p in ctx.command.params if p.name is not None}
    for name, what in options.items():
        if name not in (*applies, "recipe", "fmt") and ctx.get_parameter_source(name) not in (
                ParameterSource.DEFAULT, None):
            raise UsageError(f"{what} does not apply with --recipe (with a recipe, {ctx.command.name} takes "
                             + ", ".join(options[a] for a in applies) + ")")
    gpu_param = next(a for a in applies if a.startswith("gpu"))
    gpus = gpu_list if ctx.get_parameter_source(gpu_param) is ParameterSource.COMMANDLINE else None
    return recipe_document(recipe, gpus, days, price, "stage", False, fmt, command=ctx.command.name or "recipe")


def recipe_document(recipe: str, gpu_list: str | None, days: float | None, price: float | None, by: str,
                    dump: bool, fmt: str, command: str = "recipe", layouts: bool = False,
                    compare_gpus: bool = False) -> Document:
    """The document `sora-compute recipe` prints (see its --help); `estimate/plan --recipe` print it too."""
    rc = resolve_recipe(recipe)
    gpus = split_names(gpu_list, "--gpu") if gpu_list is not None else None
    fallback = ""
    if gpus is not None and len(gpus) == 1:  # the recipe's price is its own GPU's: another type's is the catalog's
        rc, gpus = rc.with_gpu(gpus[0]), None
        rc, fallback = kernel_on_gpu(rc)  # as a --gpu list does: FA2 where the type has no points for the kernel
    if price is not None:
        rc = rc.model_copy(update={"price_usd_per_hour": price})
    if gpus is not None and days is not None:
        raise UsageError("--days scales one GPU type; give one --gpu with it, not a list")
    if compare_gpus and gpus is not None:
        raise UsageError("--compare-gpus compares every catalog GPU type; give a --gpu list or --compare-gpus")
    asked = [o for o, on in (("--days", days is not None), ("--layouts", layouts), ("--compare-gpus", compare_gpus),
                             ("--dump", dump)) if on]
    if len(asked) > 1:
        raise UsageError(f"{asked[0]} and {asked[1]} answer different questions: give one of them")
    doc = Document(command, units=UNITS, assumptions={**rc.assumptions, **{
        f"goodput.{k}": f"{o.fraction:g} ({o.source})" for k, o in rc.goodput.items()}})
    if fallback:
        doc.note(fallback)
    doc.query = {"recipe": rc.name, "gpu": rc.gpu, "days": days, "price_usd_per_gpu_hour": price, "by": by}
    if dump:
        if fmt not in ("table", "json"):
            raise UsageError("--dump prints the recipe as YAML (--format table) or JSON (--format json)")
        doc.text(dump_recipe(rc, "json" if fmt == "json" else "yaml"))
        doc.data("recipe", rc.model_dump(mode="json"))
        return doc
    if days is not None:
        dl = recipe_gpus_for_days(rc, days)
        rc, est = dl.recipe, dl.estimate
        b0, t1 = dl.base.total, est.total
        doc.text(f"to finish in {days:g} days: " + ", ".join(f"{s.name} {s.gpus:,} GPUs x {s.iterations:,} iters"
                                                              for s in est.recipe.stages)
                 + f" ({_samples_kept(t1['samples'] / b0['samples'] - 1)}): {fmt_duration_days(t1['wall_days'])}, "
                   f"{fmt_int(t1['gpu_days'])} GPU-days, "
                   f"{fmt_usd(t1['cost_usd'])}; at the recipe's own GPUs {fmt_duration_days(b0['wall_days'])}, "
                   f"{fmt_int(b0['gpu_days'])} GPU-days: the deadline's GPUs are {dl.efficiency:.0%} as efficient"
                 + _why_less(rc, dl.efficiency))
        doc.data("deadline", {"days": days, "efficiency": dl.efficiency, "base_wall_days": b0["wall_days"],
                              "base_gpu_days": b0["gpu_days"]})
    elif layouts:
        est, cmp_layouts = fastest_layouts(rc)
        rc = est.recipe
    else:
        est = estimate_recipe(rc)
    t = est.total
    stages = f"{len(rc.stages)} stage{'s' if len(rc.stages) > 1 else ''}"
    doc.text(f"{rc.name} on {rc.gpu} ({rc.precision}, {attention_timed_with(rc)}): {stages}, "
             f"{fmt_sci(t['images'])} images + {fmt_sci(t['videos'])} videos, {fmt_sci(t['tokens'])} latent tokens, "
             f"{fmt_sci(t['model_flops'])} model FLOPs\n"
             f"  {fmt_int(t['gpu_days'])} GPU-days, {fmt_duration_days(t['wall_days'])} wall-clock, "
             f"{fmt_usd(t['cost_usd'])} (at {fmt_usd(_price(rc))} per GPU-hour), {fmt_mwh(t['energy_mwh'])} "
             f"(PUE {rc.pue:g}); MFU {t['mfu']:.0%} "
             f"({t['mfu_wall']:.0%} with goodput losses), {fmt_int(t['tokens_per_s_per_gpu'])} tokens/s per GPU")
    for n in est.notes:
        doc.note(n)
    doc.data("total", t)
    if by == "bucket":
        b = est.buckets
        doc.table("buckets", b, pd.DataFrame({
            "stage": b["stage"], "bucket": b["bucket"], "frames": b["num_frames"], "batch": b["rank_batch"],
            "weight": [f"{x:.3g}" for x in b["weight"]], "samples": [fmt_sci(x) for x in b["samples"]],
            "tokens/sample": [fmt_int(x) for x in b["video_tokens"]],
            "DiT s": [f"{x:.3g}" for x in b["dit_s"]], "VAE s": [f"{x:.3g}" for x in b["vae_encode_s"]],
            "text s": [f"{x:.3g}" for x in b["text_encode_s"]]}))
    elif by == "breakdown":
        bd = est.breakdown()
        doc.table("breakdown", bd, pd.DataFrame({"stage": bd["stage"], "part": bd["part"],
                                                 "GPU-days": [f"{x / 86400:,.1f}" for x in bd["gpu_seconds"]],
                                                 "share": [f"{x:.1%}" for x in bd["share"]]}))
    else:
        doc.table("stages", est.stages, _stage_human(est))
    if layouts:
        t0 = float(cmp_layouts["given_wall_days"].sum())
        doc.text(f"\nThe fastest layout of each stage (the layout search at the stage's GPUs; a bucket table keeps "
                 f"its dp): {fmt_duration_days(t0)} as given -> {fmt_duration_days(t['wall_days'])} (the table above)")
        doc.table("layouts", cmp_layouts, pd.DataFrame({
            "stage": cmp_layouts["stage"], "GPUs": [fmt_int(x) for x in cmp_layouts["gpus"]],
            "given": cmp_layouts["given_layout"], "s/iter": [f"{x:.3g}" for x in cmp_layouts["given_s_per_iteration"]],
            "fastest": cmp_layouts["fastest_layout"],
            "s/iter ": [f"{x:.3g}" for x in cmp_layouts["fastest_s_per_iteration"]],
            "speed-up": [f"{x:.2f}x" for x in cmp_layouts["speedup"]]}))
        for w in cmp_layouts["why_as_given"]:
            if w:
                doc.note(f"{w}: kept as given")
    if gpus is not None or compare_gpus:
        cmp = compare_gpu_types(rc, gpus, search=compare_gpus)
        if not len(cmp):
            raise UsageError("no GPU type can run this recipe: " + "; ".join(
                f"{x['gpu']}: {x['why']}" for x in cmp.attrs["skipped"]))
        same = "each stage's layout searched on each type" if compare_gpus else "same GPU counts and layouts"
        doc.text(f"\nThe whole recipe on each GPU type ({same}, catalog prices; cheapest: "
                 f"{cmp['gpu'].iloc[0]}):")
        for x in cmp.attrs["skipped"]:
            doc.note(f"{x['gpu']} left out: {x['why']}")
        doc.table("gpu_types", cmp, pd.DataFrame({
            "gpu": cmp["gpu"], "attention": cmp["attention_kernel"], "GPU-days": [fmt_int(x) for x in cmp["gpu_days"]],
            "wall": [fmt_duration_days(x) for x in cmp["wall_days"]], "cost": [fmt_usd(x) for x in cmp["cost_usd"]],
            "MFU": [f"{x:.0%}" for x in cmp["mfu"]]}))
    return doc
