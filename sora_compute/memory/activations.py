"""Inference peaks of the reference models, in bytes: the peak of live activation bytes during one forward without
gradients: the liveness evaluator (``evaluate/liveness.py``) over each model's ledger, the DiT's block runs, the text
encoders' and the VAEs' whole ledgers (a VAE's chunks, micro-batches and frame-by-frame modules are ledger structure).

Training activations (what autograd saves for backward) are read from the ledger: ``evaluate/saved.py``.
Activations are in ``act_bytes`` (2 for bf16, 4 for fp32).
"""

from __future__ import annotations

from sora_compute.evaluate.liveness import Segment, ledger_peak, peak_bytes
from sora_compute.evaluate.params import text_encoder_params
from sora_compute.evaluate.saved import AttentionKernel
from sora_compute.hardware.profiles import DTYPE_BYTES
from sora_compute.ledger.dit import DiTShape
from sora_compute.ledger.formulas import Number
from sora_compute.ledger.registry import lookup
from sora_compute.ledger.rope import TABLE, table_rows
from sora_compute.ledger.text_encoder import text_encoder_ledger
from sora_compute.ledger.vae import vae_decoder_ledger, vae_encoder_ledger
from sora_compute.specs import DiTSpec, ModelSpec, TextEncoderSpec, VAESpec

__all__ = [
    "dit_inference_peak",
    "vae_decode_peak",
    "vae_encode_peak",
    "text_encoder_peak",
    "text_element_bytes",
    "text_weight_bytes",
    "text_encoders_peak",
]


def _grid_rows(spec: DiTSpec, grid: tuple[int, int, int], L: int, B: int) -> tuple[int, int, int]:
    T, H, W = grid
    N = T * H * W
    L = L if spec.text_conditioned else 0
    return N, L, B * (N + L if spec.conditioning in ("joint", "dual_stream") else N)


def dit_inference_peak(spec: DiTSpec, grid: tuple[int, int, int], text_tokens: int = 0, batch: int = 1,
                       kernel: AttentionKernel = "fused", act_bytes: int = 2, streamed: int = 0) -> int:
    """Peak live activation bytes of one DiT forward without gradients (weights not included).

    The liveness evaluator (evaluate/liveness.py) over each block run's dataflow in the ledger (adaLN blocks: full,
    spatial, temporal, Skiparse, joint, cross-attention; MMDiT dual- and single-stream; Mochi's asymmetric blocks),
    on top of what the caller holds: the block input (video and text streams), the conditioning vector (and, with a
    shared adaLN projection, the projection too: the final layer reads the vector), the projected text of
    cross-attention. Every block instance of a run starts from the same live set, so one instance per run gives the
    peak; the embedders and the final layer hold less than a block. ``streamed``: bytes per weight element of each
    op's own weights, live while it runs (sequential CPU offload; 0: none)."""
    N, L, R = _grid_rows(spec, grid, text_tokens, batch)
    B, d, a = batch, spec.hidden_size, act_bytes
    shape = DiTShape(B, *grid, L)
    Lk = L + spec.cross_tokens_extra  # cross-attention keys (a second encoder's tokens prepended)
    cond = B * spec.modulation_chunks * d if spec.modulation == "shared" else B * spec.cond
    if spec.conditioning in ("dual_stream", "asymmetric"):  # the streams apart: video and text
        inputs = {"x": B * N * d, "y": B * L * (spec.text_width if spec.conditioning == "asymmetric" else d),
                  "c": cond}
    else:
        inputs = {"x": R * d, "c": cond, **({"y": B * Lk * d} if spec.conditioning == "cross_attention" else {})}
    if spec.modulation == "shared":  # the conditioning vector itself, kept beside its projection for the final layer
        inputs["t"] = B * spec.cond
    if spec.frame_mask:  # STDiT3 given x_mask: timestep 0's embedding and projection, and the mask (B x T bool)
        inputs.update({"t0": B * spec.cond, "c0": cond, "x_mask": -(-B * grid[0] // a)})
    # RoPE tables (fp32 cos and sin, built once per forward): read by the blocks, held underneath them
    table = 2 * table_rows(spec, grid[0], N, L) * spec.head_dim * 4 if spec.rope != "none" else 0
    segments = [Segment(lookup("dit_block", mode)(spec, shape, mode, blocks), {**inputs, TABLE: 0}, base=table)
                for mode, blocks in spec.block_schedule()]
    return int(peak_bytes(segments, a, kernel, streamed))


def text_encoder_peak(spec: TextEncoderSpec, tokens: Number, batch: Number = 1, act_bytes: int = 2,
                      streamed: int = 0) -> Number:
    """Peak live activation bytes of a text-encoder forward without gradients (weights not included): the liveness
    evaluator over the encoder's ledger (``ledger/text_encoder.py``). Equal to the live-tensor tracker on the
    reference modules of every kind (tests/test_text_encoders.py, tests/test_memory.py). ``streamed``: as
    ``dit_inference_peak``."""
    return ledger_peak(text_encoder_ledger(spec, tokens, batch), act_bytes, streamed=streamed)


def text_element_bytes(spec: TextEncoderSpec, run_bytes: int) -> int:
    """Bytes per element of an encoder's weights and activations at inference: its ``inference_dtype``'s (fp32, tf32:
    4), else the run's ``run_bytes``."""
    return DTYPE_BYTES[spec.inference_dtype] if spec.inference_dtype is not None else run_bytes


def text_weight_bytes(model: ModelSpec, weight_bytes: int) -> int:
    """Bytes of all the text encoders' weights: sum of parameters x bytes per element of each encoder's dtype
    (``weight_bytes`` for those run in the run's dtype)."""
    return sum(text_encoder_params(e) * text_element_bytes(e, weight_bytes) for e in model.text_encoders)


def text_encoders_peak(model: ModelSpec, batch: Number, act_bytes: int, streamed: int = 0) -> int:
    """The largest activation peak of the text encoders (they run one by one), each in its own dtype's bytes;
    ``streamed``: the run's bytes per streamed weight element (sequential offload; an encoder's own dtype instead
    where it has one), 0 for none."""
    return max((int(text_encoder_peak(e, n, batch, text_element_bytes(e, act_bytes),
                                      text_element_bytes(e, streamed) if streamed else 0))
                for e, n in zip(model.text_encoders, model.text_encoder_tokens(), strict=True)), default=0)


def vae_decode_peak(spec: VAESpec, latent_shape: tuple[int, int, int], batch: int = 1, act_bytes: int = 2) -> int:
    """Peak live activation bytes of decoding ``batch`` latents of (T', H', W') (the latent itself not counted): the
    liveness evaluator over the decoder's ledger."""
    return int(ledger_peak(vae_decoder_ledger(spec, latent_shape, batch), act_bytes))


def vae_encode_peak(spec: VAESpec, video_shape: tuple[int, int, int], batch: int = 1, act_bytes: int = 2) -> int:
    """Peak live activation bytes of encoding ``batch`` videos of (F, H, W) (the video itself not counted): the
    liveness evaluator over the encoder's ledger."""
    return int(ledger_peak(vae_encoder_ledger(spec, video_shape, batch), act_bytes))
