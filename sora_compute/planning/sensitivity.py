"""Which assumptions move a training estimate, and where published Sora estimates land under our model.

``sensitivity`` varies one assumption at a time (low / high around the scenario's base) and reports
the multiple of GPT-3 175B each gives: the data of a tornado chart. ``published_estimates`` puts
the published Sora figures (../shared/anchors.md) next to ours and says what each would imply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from sora_compute.evaluate.params import dit_params
from sora_compute.hardware import load_gpu
from sora_compute.planning import (
    GPT3_PAPER_FLOPS,
    DataBucket,
    TrainingEstimate,
    TrainingScenario,
    TrainingStage,
    estimate_training,
    six_nd,
)
from sora_compute.planning.inference import InferenceEstimate
from sora_compute.specs import MAX_SIDE_PX, RESOLUTIONS, DiTSpec, Workload
from sora_compute.units import fmt_multiple, fmt_sci

__all__ = ["Variation", "sora_variations", "generic_variations", "sensitivity", "Published", "published_estimates",
           "PUBLISHED", "published_inference"]


@dataclass(frozen=True)
class Variation:
    """One assumption and how to move it: ``apply(scenario, "low" | "high")`` returns the varied scenario."""

    assumption: str
    base: str
    low: str
    high: str
    apply: Callable[[TrainingScenario, str], TrainingScenario]


def _with_dit(sc: TrainingScenario, **update: object) -> TrainingScenario:
    dit = DiTSpec.model_validate({**sc.model.dit.model_dump(), **update})
    return sc.with_model(sc.model.model_copy(update={"dit": dit}))


def _map_stage(sc: TrainingScenario, stage: str, fn: Callable[[TrainingStage], TrainingStage]) -> TrainingScenario:
    if stage not in {s.name for s in sc.stages}:
        raise KeyError(f"scenario {sc.name!r} has no stage {stage!r}")
    return sc.model_copy(update={"stages": tuple(fn(s) if s.name == stage else s for s in sc.stages)})


def _map_buckets(sc: TrainingScenario, stage: str, **update: object) -> TrainingScenario:
    def fn(s: TrainingStage) -> TrainingStage:
        buckets = tuple(DataBucket.model_validate({**b.model_dump(), **update}) for b in s.buckets)
        return s.model_copy(update={"buckets": buckets})
    return _map_stage(sc, stage, fn)


def _scale_stage(sc: TrainingScenario, stage: str, field: str, factor: float) -> TrainingScenario:
    return _map_stage(sc, stage, lambda s: s.model_copy(update={field: getattr(s, field) * factor}))


def _with_vae(sc: TrainingScenario, **update: object) -> TrainingScenario:
    vae = sc.model.vae.model_copy(update=update)
    return sc.with_model(sc.model.model_copy(update={"vae": vae}))


def _describe(values: list[tuple[str, float]]) -> str:
    """'10 s' for one bucket; '10 s (90%), 5 s (10%)' for several (value, share) pairs."""
    if len({v for v, _ in values}) == 1:
        return values[0][0]
    return ", ".join(f"{v} ({share:.0%})" for v, share in values)


def _seconds(b: DataBucket) -> float:
    return b.duration_s if b.duration_s is not None else (b.num_frames or 1) / b.fps


def _millions(x: float) -> str:
    if x >= 1e11:
        return fmt_sci(x)
    return f"{x / 1e6:,.3g}M" if x >= 1e5 else f"{x:,.3g}"


def _stage(sc: TrainingScenario, stage: str) -> TrainingStage:
    return next(s for s in sc.stages if s.name == stage)


def _lengths(st: TrainingStage) -> str:
    return _describe([(f"{_seconds(b):.3g} s", b.share) for b in st.buckets])


def _sizes(st: TrainingStage) -> str:
    return _describe([(f"{b.width}x{b.height}", b.share) for b in st.buckets])


NONE_LOWER, NONE_HIGHER = "none lower", "none higher"  # a side with no alternative: the base itself is re-run


def _rung(sc: TrainingScenario, b: DataBucket, way: str) -> tuple[int, int]:
    """The bucket's frame one named size down (``way="low"``) or up the RESOLUTIONS ladder, snapped to the model's
    grid: a 16:9 frame takes the named size, another aspect keeps its own at the named short side; past the
    ladder's ends, half / double per side."""
    sw, sh = sc.model.grid_px

    def snap(w: float, h: float) -> tuple[int, int]:
        return (min(MAX_SIDE_PX, max(sw, round(w / sw) * sw)), min(MAX_SIDE_PX, max(sh, round(h / sh) * sh)))

    short, long_ = sorted((b.width, b.height))
    rungs = []
    for rw, rh in dict.fromkeys(RESOLUTIONS.values()):
        if abs(long_ / short - rw / rh) > 0.02 * rw / rh:  # not 16:9: keep the bucket's aspect
            rw = round(rh * long_ / short)
        rungs.append(snap(rh, rw) if b.height > b.width else snap(rw, rh))
    area = b.width * b.height
    if way == "low":
        below = [r for r in rungs if r[0] * r[1] < area]
        return max(below, key=lambda r: r[0] * r[1]) if below else snap(b.width / 2, b.height / 2)
    above = [r for r in rungs if r[0] * r[1] > area]
    return min(above, key=lambda r: r[0] * r[1]) if above else snap(b.width * 2, b.height * 2)


def _step_resolution(sc: TrainingScenario, stage: str, way: str) -> TrainingScenario:
    """Every bucket of ``stage`` one named size down / up (``_rung``)."""
    def fn(s: TrainingStage) -> TrainingStage:
        buckets = tuple(b.model_copy(update=dict(zip(("width", "height"), _rung(sc, b, way), strict=True)))
                        for b in s.buckets)
        return s.model_copy(update={"buckets": buckets})
    return _map_stage(sc, stage, fn)


def _resolution_row(sc: TrainingScenario, stage: str) -> Variation:
    return _labelled(f"resolution, {stage}", _sizes(_stage(sc, stage)), lambda s, w: _step_resolution(s, stage, w),
                     lambda s: _sizes(_stage(s, stage)), sc)


def _labelled(assumption: str, base: str, apply: Callable[[TrainingScenario, str], TrainingScenario],
              label: Callable[[TrainingScenario], str], sc: TrainingScenario) -> Variation:
    """A variation whose base, low and high labels are all read by ``label`` from the scenario each one runs."""
    return Variation(assumption, base, label(apply(sc, "low")), label(apply(sc, "high")), apply)


# DiT sizes the sora row steps to (depth, hidden size, heads): the nearest smaller / larger than the run's DiT;
# past either end, the width at 0.75x / 1.5x with the head size kept (as ``generic_variations``).
DIT_LADDER = ((28, 3072, 24), (48, 5120, 40))


def _dit_steps(sc: TrainingScenario) -> dict[str, dict[str, int]]:
    d = sc.model.dit
    n = dit_params(d)
    sized = [(dit_params(DiTSpec.model_validate({**d.model_dump(), "depth": a, "hidden_size": w, "num_heads": h})),
              {"depth": a, "hidden_size": w, "num_heads": h}) for a, w, h in DIT_LADDER]
    below = [x for x in sized if x[0] < n]
    above = [x for x in sized if x[0] > n]
    head = d.hidden_size // d.num_heads
    low_h, high_h = max(1, 3 * d.num_heads // 4), 3 * d.num_heads // 2
    return {"low": max(below, key=lambda x: x[0])[1] if below else {"hidden_size": low_h * head, "num_heads": low_h},
            "high": min(above, key=lambda x: x[0])[1] if above else {"hidden_size": high_h * head,
                                                                     "num_heads": high_h}}


def _dit_label(sc: TrainingScenario) -> str:
    d = sc.model.dit
    return f"{dit_params(d) / 1e9:.1f}B ({d.depth} x {d.hidden_size})"


def _latents_row(sc: TrainingScenario) -> Variation:
    """Latents and text pre-computed (the cheaper side) or encoded on the fly; the side the run already sits on has
    no alternative and re-runs the base."""
    on_fly = sc.vae_on_the_fly or sc.text_on_the_fly
    both = sc.vae_on_the_fly and sc.text_on_the_fly
    return Variation("latents and text", "encoded on the fly" if on_fly else "pre-computed",
                     "pre-computed" if on_fly else NONE_LOWER, "encoded on the fly" if not both else NONE_HIGHER,
                     lambda s, w: s.model_copy(update={"vae_on_the_fly": w == "high", "text_on_the_fly": w == "high"})
                     if (w == "low" and on_fly) or (w == "high" and not both) else s)


def _vae_row(sc: TrainingScenario) -> Variation:
    """VAE temporal compression doubled (about half the latent frames) or halved (about twice); 1x has no higher."""
    c = sc.model.vae.temporal_compression
    comp = {"low": 2 * c, "high": c // 2}
    return Variation("VAE temporal compression", f"{c}x", f"{2 * c}x (half the tokens)",
                     f"{c // 2}x (twice the tokens)" if c > 1 else NONE_HIGHER,
                     lambda s, w: _with_vae(s, temporal_compression=comp[w]) if comp[w] >= 1 else s)


def sora_variations(sc: TrainingScenario | None = None, stage: str | None = None) -> list[Variation]:
    """Low/high alternatives for the assumptions of the ``sora`` scenario around ``stage`` (default: the stage with
    the most model FLOPs), each derived from ``sc`` (default: the sora scenario) so a what-if shows its own base and
    steps from it: clip length halved / doubled, resolution one named size down / up, the DiT one size down / up,
    clips and epochs halved / doubled, VAE temporal compression doubled / halved."""
    from sora_compute.planning import load_scenario

    sc = sc if sc is not None else load_scenario("sora")
    stage = stage if stage is not None else estimate_training(sc).main_stage
    st = _stage(sc, stage)
    field = _count_field(st)
    count = getattr(st, field)
    dit = _dit_steps(sc)
    out = [
        _labelled("DiT size", _dit_label(sc), lambda s, w: _with_dit(s, **dit[w]), _dit_label, sc),
        _labelled(f"clip length, {stage}", _lengths(st), lambda s, w: _scale_length(s, stage, 0.5 if w == "low" else 2),
                  lambda s: _lengths(_stage(s, stage)), sc),
        _resolution_row(sc, stage),
        Variation(f"{'clips' if field == 'videos' else field}, {stage}", _millions(count), _millions(count / 2),
                  _millions(count * 2), lambda sc, w: _scale_stage(sc, stage, field, 0.5 if w == "low" else 2.0)),
    ]
    if st.epochs is not None:
        e = st.epochs
        out.append(Variation(f"epochs, {stage}", f"{e:g}", f"{e / 2:g}", f"{e * 2:g}",
                             lambda sc, w: _scale_stage(sc, stage, "epochs", 0.5 if w == "low" else 2.0)))
    out += [_vae_row(sc), _latents_row(sc)]
    low_res = "video-480p-4s"
    lr = next((s for s in sc.stages if s.name == low_res), None)
    if lr is not None and low_res != stage and lr.videos is not None and lr.epochs is not None:
        out.append(Variation(f"clips, {low_res}", f"{_millions(lr.videos)} x {lr.epochs:g} epochs",
                             _millions(lr.videos / 2), _millions(lr.videos * 2),
                             lambda sc, w: _scale_stage(sc, low_res, "videos", 0.5 if w == "low" else 2.0)))
    return out


def _count_field(stage: TrainingStage) -> str:
    """The field that sets how many samples a stage sees (scaling it scales the stage)."""
    for f in ("samples", "videos", "steps", "token_budget"):
        if getattr(stage, f) is not None:
            return f
    raise AssertionError("a validated stage has one way to count samples")


def _scale_length(sc: TrainingScenario, stage: str, factor: float) -> TrainingScenario:
    """Every bucket of ``stage`` at ``factor`` x its seconds (the model snaps the frame count)."""
    def fn(s: TrainingStage) -> TrainingStage:
        buckets = tuple(DataBucket.model_validate({**b.model_dump(), "duration_s": _seconds(b) * factor,
                                                   "num_frames": None}) for b in s.buckets)
        return s.model_copy(update={"buckets": buckets})
    return _map_stage(sc, stage, fn)


def generic_variations(sc: TrainingScenario) -> list[Variation]:
    """Low/high alternatives for any scenario, around its dominant stage: model width (0.75x / 1.5x), clip
    resolution (one named size down / up) and length (half / double), samples seen (half / double), and latents/text
    encoded on the fly; every base is read from ``sc``."""
    stage = estimate_training(sc).main_stage
    st = _stage(sc, stage)
    field = _count_field(st)
    d, h = sc.model.dit.hidden_size, sc.model.dit.num_heads
    head = d // h
    heads = {"low": max(1, 3 * h // 4), "high": 3 * h // 2}  # width at 0.75x / 1.5x, head size kept
    out = [
        Variation("DiT width", f"{d}", f"{heads['low'] * head}", f"{heads['high'] * head}",
                  lambda s, w: _with_dit(s, hidden_size=heads[w] * head, num_heads=heads[w])),
        _resolution_row(sc, stage),
        Variation(f"{field}, {stage}", _millions(getattr(st, field)), _millions(getattr(st, field) / 2),
                  _millions(getattr(st, field) * 2),
                  lambda s, w: _scale_stage(s, stage, field, 0.5 if w == "low" else 2.0)),
        _latents_row(sc),
    ]
    if any((b.num_frames or 2) > 1 for b in st.buckets):
        out.insert(2, _labelled(f"clip length, {stage}", _lengths(st),
                                lambda s, w: _scale_length(s, stage, 0.5 if w == "low" else 2.0),
                                lambda s: _lengths(_stage(s, stage)), sc))
    return out


def sensitivity(scenario: TrainingScenario | str = "sora", variations: list[Variation] | None = None
                ) -> pd.DataFrame:
    """One row per assumption: the GPT-3 multiple at its low and high value, with the base, sorted by swing.
    Default variations: ``sora_variations`` for the sora scenario, ``generic_variations`` otherwise."""
    from sora_compute.planning import load_scenario

    sc = load_scenario(scenario) if isinstance(scenario, str) else scenario
    est = estimate_training(sc)
    base = est.gpt3_multiple
    if variations is None:
        main = _stage(sc, est.main_stage)
        sora_like = sc.name == "sora" and main.videos is not None and sc.model.dit.num_heads > 0
        variations = sora_variations(sc, est.main_stage) if sora_like else generic_variations(sc)
    rows = []
    for v in variations:
        low, high = (estimate_training(v.apply(sc, w)).gpt3_multiple for w in ("low", "high"))
        rows.append({"assumption": v.assumption, "base": v.base, "low": v.low, "high": v.high,
                     "multiple_low": low, "multiple_base": base, "multiple_high": high,
                     "swing": abs(high - low)})
    return pd.DataFrame(rows).sort_values("swing", ascending=False, ignore_index=True)


@dataclass(frozen=True)
class Published:
    """A published estimate: either FLOPs, or a fleet (GPUs x days) that ``published_estimates`` converts."""

    source: str
    basis: str
    flops: float | None = None
    gpus: int = 0
    gpu: str = "h100-sxm"
    days: float = 0.0

    def total_flops(self, mfu: float) -> float:
        if self.flops is not None:
            return self.flops
        return self.gpus * load_gpu(self.gpu).peak_flops("bf16") * mfu * self.days * 86400


# Published estimates of Sora's training compute (see ../shared/anchors.md for the sources).
PUBLISHED = [
    Published("seed report", "~8.2x GPT-3 175B per training run (assumptions not published)",
              flops=8.2 * GPT3_PAPER_FLOPS),
    Published("China Galaxy Securities (brokerage)", "assumed 30B-parameter model; 8.4e23 FLOPs = 2.7x GPT-3",
              flops=8.4e23),
    Published("Factorial Funds (2024), low", "4,200 H100 for one month", gpus=4200, days=30),
    Published("Factorial Funds (2024), high", "10,500 H100 for one month", gpus=10500, days=30),
]


def published_estimates(estimate: TrainingEstimate | None = None, mfu: float = 0.4) -> pd.DataFrame:
    """Each published estimate as FLOPs and a GPT-3 multiple (GPU-month figures at ``mfu``), and what it
    implies against our scenario: the ratio to our estimate and the 6·N·D reading of each figure."""
    from sora_compute.planning import load_scenario

    est = estimate if estimate is not None else estimate_training("sora")
    attention_share, shape = _attention_share(est)
    is_base = est.scenario == load_scenario("sora")
    rows = []
    for p in PUBLISHED:
        flops = p.total_flops(mfu)
        ratio = flops / est.model_flops
        tokens_30b = flops / six_nd(30e9, 1)  # tokens a 30B model would see if the figure were 6·N·D
        rows.append({
            "source": p.source, "basis": p.basis, "flops": flops, "gpt3_multiple": flops / GPT3_PAPER_FLOPS,
            "ratio_to_ours": ratio,
            "reading": _reading(p.source, ratio, est, tokens_30b, attention_share, shape, mfu, is_base),
        })
    rows.append({"source": "sora-compute, 6·N·D of our scenario", "basis": "parameters x tokens, no attention term",
                 "flops": est.six_nd_flops, "gpt3_multiple": est.six_nd_flops / GPT3_PAPER_FLOPS,
                 "ratio_to_ours": est.six_nd_flops / est.model_flops,
                 "reading": f"ignoring attention drops {1 - est.six_nd_flops / est.model_flops:.0%} of our count: "
                            f"attention is {attention_share:.0%} of a {shape} forward"})
    return pd.DataFrame(rows)


def _attention_share(est: TrainingEstimate) -> tuple[float, str]:
    """Share of the DiT forward spent in the attention core at the scenario's dominant bucket, and that bucket's
    shape in words ("1280x720 10 s clip, 219,600 tokens")."""
    from sora_compute.flops import MATMUL_ONLY, count_dit

    top = est.table.sort_values("model_flops", ascending=False).iloc[0]
    bucket = DataBucket(width=int(top["width"]), height=int(top["height"]), num_frames=int(top["num_frames"]),
                        fps=float(top["fps"]))
    video = bucket.video(est.scenario.model)
    w = Workload.of(est.scenario.model, video)  # the latent shape, computed once
    c = count_dit(w, convention=MATMUL_ONLY)
    sdpa = sum(t.total_macs for t in c.terms if t.op == "sdpa")
    shape = (f"{video.width}x{video.height} {video.duration_s:.3g} s clip ({video.num_frames} frames, "
             f"{w.tokens:,} tokens)")
    return float(sdpa) / float(c.macs), shape


def _reading(source: str, ratio: float, est: TrainingEstimate, tokens_30b: float, attention: float, shape: str,
             mfu: float, is_base: bool) -> str:
    if source.startswith("seed"):
        if is_base:
            return (f"the sora scenario was sized to land on it: it lands at {fmt_multiple(est.gpt3_multiple)} "
                    "(a calibration of our stage sizes, not an independent confirmation)")
        return (f"this scenario lands at {fmt_multiple(est.gpt3_multiple)}, {fmt_multiple(1 / ratio)} the seed's "
                "figure (the sora scenario was sized to land on it; this what-if moves away from it)")
    if source.startswith("China Galaxy"):
        return (f"{ratio:.3g}x our count; as 6·N·D for 30B parameters it is {tokens_30b:.2g} tokens, and a 6·N·D "
                f"count leaves out attention ({attention:.0%} of a {shape} forward)")
    return (f"{ratio:.3g}x our count at MFU {mfu:.0%}: one month of that fleet buys {ratio:.3g}x our data plan "
            f"(more clips or epochs, longer or sharper video) or covers research runs beyond the final one")


# Factorial Funds (2024), "Under the hood: how OpenAI's Sora model works": about 5 minutes of video per H100-hour.
FACTORIAL_VIDEO_MINUTES_PER_H100_HOUR = 5.0


def published_inference(mfu: float = 0.4, video_minutes_per_h100_hour: float = FACTORIAL_VIDEO_MINUTES_PER_H100_HOUR,
                        inference: InferenceEstimate | None = None) -> pd.DataFrame:
    """The published inference throughput next to ours for ``inference`` (default: the sora preset's native clip at
    its sampling defaults; a what-if passes its own clip and settings) predicted on an H100 (the time model,
    ``plan_serving``; their figure is per H100-hour), and what the gap implies: their FLOPs per minute of video at
    ``mfu`` (their assumption), ours counted, and the token count per clip that would close the gap
    (attention-dominated: time grows roughly with tokens squared)."""
    from sora_compute.planning import estimate_inference, plan_serving

    inf = inference if inference is not None else estimate_inference("sora")
    peak = load_gpu("h100-sxm").peak_flops("bf16")
    theirs = peak * mfu * 3600 / video_minutes_per_h100_hour  # FLOPs per minute of video
    plan = plan_serving(inf, "h100-sxm")
    ours = plan.video_minutes_per_gpu_hour
    tokens = inf.counts["dit"].shape["tokens"]
    ratio = video_minutes_per_h100_hour / ours
    return pd.DataFrame([
        {"source": "Factorial Funds (2024)", "video_minutes_per_h100_hour": video_minutes_per_h100_hour,
         "flops_per_video_minute": theirs, "reading": f"at MFU {mfu:.0%} on H100"},
        {"source": "sora-compute, sora preset" if inference is None else
         f"sora-compute, {inf.model.name} at {inf.video.width}x{inf.video.height}",
         "video_minutes_per_h100_hour": ours,
         "flops_per_video_minute": inf.flops_per_minute,
         "reading": f"{ratio:.3g}x fewer than theirs ({plan.time_basis}): {tokens:,} tokens per "
                    f"{inf.video.duration_s:.3g} s clip, {inf.settings.steps} steps, "
                    f"{'a CFG pair' if inf.settings.cfg else 'no CFG pair'}; with attention dominant, about "
                    f"{tokens / ratio**0.5:,.0f} tokens per clip (or ~{ratio:.3g}x fewer DiT evaluations) would close "
                    "the gap"},
    ])
