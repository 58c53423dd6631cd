"""The GPT-3 175B yardstick (presets/yardsticks.yaml) and the 6 N D reading of training compute."""

from __future__ import annotations

from typing import Any

from sora_compute.presets import load_yardstick

# GPT-3 175B (Brown et al. 2020, "Language Models are Few-Shot Learners", Table D.1): 3.64e3 PF-days.
_GPT3 = load_yardstick("gpt3-175b")  # presets/yardsticks.yaml, with its source
GPT3_PAPER_FLOPS = _GPT3.training_flops  # 3.14e23
GPT3_PARAMS = _GPT3.params_in_compute_table  # the paper's Table D.1 rounds 174.6B to 175B
GPT3_TOKENS = _GPT3.tokens  # 300e9


def six_nd(params: Any, tokens: Any) -> Any:
    """Training FLOPs by the 6·N·D rule: 2 FLOPs per MAC x (forward + 2 x backward) per parameter per token;
    attention's sequence-length term is ignored (Kaplan et al. 2020)."""
    return 6 * params * tokens


GPT3_6ND_FLOPS = six_nd(GPT3_PARAMS, GPT3_TOKENS)  # 3.15e23, within 0.4% of the paper's figure
