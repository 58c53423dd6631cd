"""sora-compute: compute and memory planning for video diffusion models.

Conventions: "MACs" are multiply-accumulates (what fvcore calls "flops"); FLOPs = 2 x MACs
(what GPU peak TFLOP/s and GPT-3's 3.14e23 count). Parameter counts are exact Python ints.
"""

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
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "VideoSpec",
    "DiTSpec",
    "VAESpec",
    "TextEncoderSpec",
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
]
