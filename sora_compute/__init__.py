"""sora-compute: compute and memory planning for video diffusion models.

Conventions: "MACs" are multiply-accumulates (what fvcore calls "flops"); FLOPs = 2 x MACs
(what GPU peak TFLOP/s and GPT-3's 3.14e23 count). Parameter counts are exact Python ints.
"""

from sora_compute.evaluate.params import dit_params, model_params, text_encoder_params
from sora_compute.flops import (
    FVCORE,
    MATMUL_ONLY,
    Count,
    CountingConvention,
    VideoGrid,
    count_dit,
    count_text_encoder,
    count_vae_decode,
    count_vae_encode,
    count_video,
)
from sora_compute.hardware import GPUSpec, gpu_catalog, gpu_names, load_gpu
from sora_compute.memory.planner import (
    ParallelLayout,
    PrecisionPolicy,
    inference_memory,
    recommend_vae_tiling,
    search_layouts,
)
from sora_compute.memory.planner import training_memory as plan_memory
from sora_compute.planning import (
    GPT3_6ND_FLOPS,
    GPT3_PAPER_FLOPS,
    Cluster,
    DataBucket,
    InferenceSettings,
    TrainingScenario,
    TrainingStage,
    TrainingTime,
    VAETiling,
    budget_plan,
    estimate_inference,
    estimate_training,
    gpus_for_days,
    load_scenario,
    plan_cluster,
    plan_serving,
    six_nd,
    sweep,
    training_time,
)
from sora_compute.planning.demand import DemandEstimate, estimate_demand
from sora_compute.planning.demand_analysis import demand_sensitivity, throughput_gap
from sora_compute.planning.demand_spec import DemandScenario, DemandSource, demand_names, load_demand
from sora_compute.planning.sensitivity import published_estimates, sensitivity
from sora_compute.presets import Preset, load_preset, preset_names
from sora_compute.specs import (
    DiTSpec,
    LatentShape,
    ModelSpec,
    TextEncoderSpec,
    VAESpec,
    VideoShapeError,
    VideoSpec,
    Workload,
    text_encoder_spec,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "VideoSpec",
    "DiTSpec",
    "VAESpec",
    "TextEncoderSpec",
    "text_encoder_spec",
    "ModelSpec",
    "Workload",
    "LatentShape",
    "VideoShapeError",
    "Preset",
    "load_preset",
    "preset_names",
    "Count",
    "CountingConvention",
    "FVCORE",
    "MATMUL_ONLY",
    "VideoGrid",
    "count_dit",
    "count_vae_encode",
    "count_vae_decode",
    "count_text_encoder",
    "count_video",
    "dit_params",
    "model_params",
    "text_encoder_params",
    "GPUSpec",
    "load_gpu",
    "gpu_names",
    "gpu_catalog",
    "GPT3_PAPER_FLOPS",
    "GPT3_6ND_FLOPS",
    "six_nd",
    "DataBucket",
    "TrainingStage",
    "TrainingScenario",
    "load_scenario",
    "estimate_training",
    "TrainingTime",
    "training_time",
    "InferenceSettings",
    "VAETiling",
    "estimate_inference",
    "Cluster",
    "plan_cluster",
    "gpus_for_days",
    "budget_plan",
    "plan_serving",
    "sweep",
    "sensitivity",
    "published_estimates",
    "DemandSource",
    "DemandScenario",
    "DemandEstimate",
    "demand_names",
    "load_demand",
    "estimate_demand",
    "demand_sensitivity",
    "throughput_gap",
    "plan_memory",
    "inference_memory",
    "search_layouts",
    "recommend_vae_tiling",
    "ParallelLayout",
    "PrecisionPolicy",
]
