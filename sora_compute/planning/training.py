"""Training compute: staged scenarios (data buckets x epochs), per-sample FLOPs, the GPT-3 multiple.

Units: FLOPs (= 2 x MACs). "Model FLOPs" are the work the algorithm needs (what MFU is quoted against);
"hardware FLOPs" add activation recomputation (what HFU counts). Projections count with the ``MATMUL_ONLY``
convention (matmuls, convolutions and attention; norms are < 0.1% of a DiT and are not part of MFU accounting)
unless told otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from sora_compute._frames import FrameRepr
from sora_compute.evaluate.params import dit_params
from sora_compute.flops import (
    MATMUL_ONLY,
    CountingConvention,
    VideoGrid,
    count_dit,
    count_text_encoder,
    count_vae_encode,
)
from sora_compute.planning.scenarios import DataBucket, TrainingScenario, load_scenario
from sora_compute.planning.yardstick import GPT3_6ND_FLOPS, GPT3_PAPER_FLOPS, six_nd
from sora_compute.specs import ModelSpec, VideoSpec, Workload

# ------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True, repr=False)
class TrainingEstimate(FrameRepr):
    """Training compute of a scenario: per (stage, bucket) rows and totals, in FLOPs (2 x MACs)."""

    scenario: TrainingScenario
    table: pd.DataFrame

    @property
    def model_flops(self) -> float:
        """DiT forward + backward (3 x forward) + frozen encoders run on the fly: what MFU is quoted against."""
        return float(self.table["model_flops"].sum())

    @property
    def hardware_flops(self) -> float:
        """Model FLOPs + activation recomputation: what HFU counts."""
        return float(self.table["hardware_flops"].sum())

    @property
    def video_tokens_seen(self) -> float:
        return float((self.table["video_tokens"] * self.table["samples"]).sum())

    @property
    def six_nd_flops(self) -> float:
        """The same training counted by 6·N·D (N = DiT parameters, D = video tokens seen): no attention term."""
        return six_nd(dit_params(self.scenario.model.dit), self.video_tokens_seen)

    @property
    def gpt3_multiple(self) -> float:
        """Model FLOPs / GPT-3's published 3.14e23 FLOPs."""
        return self.model_flops / GPT3_PAPER_FLOPS

    @property
    def gpt3_multiple_6nd(self) -> float:
        """Model FLOPs / GPT-3 by 6·N·D (3.15e23): both sides 2 FLOPs per MAC."""
        return self.model_flops / GPT3_6ND_FLOPS

    @property
    def six_nd_multiple(self) -> float:
        """What a parameter-count estimate says: this model's 6·N·D / GPT-3's 6·N·D."""
        return self.six_nd_flops / GPT3_6ND_FLOPS

    @property
    def main_stage(self) -> str:
        """Name of the stage with the most model FLOPs (the one what-ifs and sensitivities vary)."""
        return str(self.by_stage().sort_values("model_flops").iloc[-1]["stage"])

    def by_stage(self) -> pd.DataFrame:
        cols = ["samples", "model_flops", "hardware_flops"]
        out = self.table.groupby("stage", sort=False)[cols].sum()
        out["gpt3_multiple"] = out["model_flops"] / GPT3_PAPER_FLOPS
        return out.reset_index()

    def summary(self) -> dict[str, float]:
        return {
            "model_flops": self.model_flops,
            "hardware_flops": self.hardware_flops,
            "gpt3_multiple": self.gpt3_multiple,
            "gpt3_multiple_6nd": self.gpt3_multiple_6nd,
            "six_nd_flops": self.six_nd_flops,
            "six_nd_multiple": self.six_nd_multiple,
            "video_tokens_seen": self.video_tokens_seen,
            "samples": float(self.table["samples"].sum()),
        }

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def __repr__(self) -> str:
        return (f"TrainingEstimate({self.scenario.name}: {self.model_flops:.3g} model FLOPs = "
                f"{self.gpt3_multiple:.2f}x GPT-3 175B, {self.hardware_flops:.3g} hardware FLOPs)")


def _per_sample(model: ModelSpec, video: VideoSpec | VideoGrid, scenario_flags: dict[str, Any],
                convention: CountingConvention) -> dict[str, Any]:
    """Training FLOPs per sample for one shape (or a grid of shapes)."""
    # one shape: a Workload, so its latent grid is computed once; a grid of shapes: the vectorised count
    w: Workload | ModelSpec = Workload.of(model, video) if isinstance(video, VideoSpec) else model
    shape = None if isinstance(w, Workload) else video
    dit = count_dit(w, shape, convention=convention)
    fwd = dit.flops
    sdpa = 2 * sum((t.total_macs for t in dit.terms if t.op == "sdpa"), start=0 * fwd)
    recompute = {"none": 0 * fwd, "selective": sdpa, "full": fwd}[scenario_flags["checkpointing"]]
    vae = count_vae_encode(w, shape, convention=convention).flops if scenario_flags["vae_on_the_fly"] else 0 * fwd
    text = count_text_encoder(model, convention=convention).flops if scenario_flags["text_on_the_fly"] else 0
    model_flops = 3 * fwd + vae + text
    return {"video_tokens": dit.shape["tokens"], "dit_forward_flops": fwd, "dit_train_flops": 3 * fwd,
            "recompute_flops": recompute, "vae_encode_flops": vae, "text_encode_flops": text,
            "model_flops_per_sample": model_flops, "hardware_flops_per_sample": model_flops + recompute}


def estimate_training(scenario: TrainingScenario | str, convention: CountingConvention = MATMUL_ONLY
                      ) -> TrainingEstimate:
    """Training FLOPs of a scenario: per sample, 3 x DiT forward (1 forward + 2 backward), plus the
    VAE encoder and text encoder forwards when run on the fly; recomputation adds hardware FLOPs only."""
    sc = load_scenario(scenario) if isinstance(scenario, str) else scenario
    flags = {"checkpointing": sc.checkpointing, "vae_on_the_fly": sc.vae_on_the_fly,
             "text_on_the_fly": sc.text_on_the_fly}
    rows = []
    for stage in sc.stages:
        per = [(b, b.video(sc.model)) for b in stage.buckets]
        costs = [_per_sample(sc.model, v, flags, convention) for _, v in per]
        mean_tokens = sum(b.share * c["video_tokens"] for (b, _), c in zip(per, costs, strict=True))
        n = stage.num_samples(mean_tokens)
        for (b, v), c in zip(per, costs, strict=True):
            samples = n * b.share
            rows.append({
                "stage": stage.name, "width": v.width, "height": v.height, "num_frames": v.num_frames, "fps": v.fps,
                "duration_s": v.duration_s, "share": b.share, "samples": samples, **c,
                "model_flops": samples * float(c["model_flops_per_sample"]),
                "hardware_flops": samples * float(c["hardware_flops_per_sample"]),
            })
    table = pd.DataFrame(rows)
    table["share_of_model_flops"] = table["model_flops"] / table["model_flops"].sum()
    return TrainingEstimate(sc, table)


def with_main_stage_shape(sc: TrainingScenario, width: int | None = None, height: int | None = None,
                          duration_s: float | None = None, fps: float | None = None,
                          stage: str | None = None) -> TrainingScenario:
    """What-if: the scenario with every bucket of its dominant stage (most model FLOPs; or ``stage``, when the
    caller already knows it) at a new shape."""
    if width is None and height is None and duration_s is None and fps is None:
        return sc
    names = [st.name for st in sc.stages]
    if stage is not None and stage not in names:
        from sora_compute._lookup import did_you_mean

        raise ValueError(f"stage: scenario {sc.name!r} has no stage {stage!r}{did_you_mean(stage, names)} "
                         f"(stages: {', '.join(names)})")
    main = stage if stage is not None else estimate_training(sc).main_stage
    stages = []
    for st in sc.stages:
        if st.name == main:
            buckets = []
            for b in st.buckets:
                upd: dict[str, Any] = {"width": width or b.width, "height": height or b.height, "fps": fps or b.fps}
                if duration_s is not None:
                    upd.update(duration_s=duration_s, num_frames=None)
                elif fps is not None and b.num_frames is not None:  # keep the clip's seconds at the new rate
                    upd.update(duration_s=b.num_frames / b.fps, num_frames=None)
                buckets.append(DataBucket.model_validate({**b.model_dump(), **upd}))
            st = st.model_copy(update={"buckets": tuple(buckets)})
        stages.append(st)
    return sc.model_copy(update={"stages": tuple(stages)})
