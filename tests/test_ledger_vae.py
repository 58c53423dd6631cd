"""The VAE ledgers: one builder per family in the one registry; every weight sits at the reference module's path."""

from typing import get_args

import numpy as np
import pytest
from hypothesis import given, settings

from sora_compute.calibration.build import build_vae
from sora_compute.calibration.profile import _family_vaes
from sora_compute.evaluate.params import param_count, vae_params
from sora_compute.ledger.registry import registered
from sora_compute.ledger.vae import vae_decoder_ledger, vae_encoder_ledger
from sora_compute.specs import GenericVAE, VAESpec, WanVAE, vae_spec
from sora_compute.specs.vae import VAEFamily

from .strategies import vae_specs
from .test_params import SMALL_FAMILY_VAES

SPECS = [spec for spec, _ in _family_vaes()] + SMALL_FAMILY_VAES


def test_every_family_has_one_spec_and_one_registered_builder():
    """The spec union's tags, the family names and the ledger registry agree; a spec without a family is generic."""
    tags = {get_args(member)[1].tag for member in get_args(get_args(VAESpec)[0])}
    assert tags == set(get_args(VAEFamily)) == set(registered("vae"))
    assert type(vae_spec()) is GenericVAE and type(vae_spec(family="wan")) is WanVAE
    # every family's peaks are the liveness evaluator's over its ledger's dataflow: no hand walks registered
    assert registered("vae_encode_peak") == registered("vae_decode_peak") == ()


@pytest.mark.parametrize("spec", [s for s in SPECS if s.family in ("opensora", "stepvideo", "wfvae")],
                         ids=lambda s: s.family)
def test_a_vae_chunking_inside_its_decoder_refuses_a_pipeline_schedule(spec: VAESpec):
    """Open-Sora 1.2, Step-Video and WF-VAE decode in their own chunks (their builders say so): a tiled or chunked
    pipeline schedule is refused in one sentence, the whole clip is modelled."""
    from sora_compute.ledger.vae_schedule import scheduled_decode
    from sora_compute.specs.vae.schedule import DecodeSchedule

    with pytest.raises(ValueError, match="decodes in its own chunks inside the decoder"):
        scheduled_decode(spec, (2, 4, 4), DecodeSchedule(mode="tiled", tile_px=(32, 32), stride_px=(16, 16)))
    assert scheduled_decode(spec, (2, 4, 4), DecodeSchedule()).n_calls == 1


def _weights_by_path(ops) -> dict[str, int]:
    out: dict[str, int] = {}
    for op in ops:
        for path in op.paths():
            out[path] = out.get(path, 0) + op.weights
    return {p: w for p, w in out.items() if w}


def _owned_where_the_ledger_says(ops, module) -> None:
    """Each op path with weights names a module whose parameters (with its children's) are the ledger's weights at
    that path and below it (a wrapper may run its child's weights itself: Step-Video's 1x1x1 convs as matmuls)."""
    weights = _weights_by_path(ops)
    modules = dict(module.named_modules())
    for path in weights:
        below = sum(w for p, w in weights.items() if p == path or p.startswith(path + "."))
        assert below == sum(p.numel() for p in modules[path].parameters()), path
    assert sum(weights.values()) == sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.family)
def test_each_module_owns_its_weights_in_the_ledger(spec: VAESpec):
    """Per module path, the ledger's weights are the reference module's parameters (torch's count)."""
    vae = build_vae(spec, "meta")
    _owned_where_the_ledger_says(vae_encoder_ledger(spec, (1, 1, 1)), vae.encoder)
    _owned_where_the_ledger_says(vae_decoder_ledger(spec, (1, 1, 1)), vae.decoder)


@given(vae_specs())
@settings(max_examples=25)
def test_generic_module_weights_by_path(spec: VAESpec):
    vae = build_vae(spec, "meta")
    _owned_where_the_ledger_says(vae_encoder_ledger(spec, (1, 1, 1)), vae.encoder)
    _owned_where_the_ledger_says(vae_decoder_ledger(spec, (1, 1, 1)), vae.decoder)


@pytest.mark.parametrize("spec", [s for s in SPECS if getattr(s, "chunk_frames", None)], ids=lambda s: s.family)
def test_a_chunked_module_counts_its_weights_once(spec: VAESpec):
    """Whole chunks and a remainder run the same modules: a sweep whose shapes need both keeps the parameters."""
    c, k = spec.chunk_frames or 1, spec.chunk_latent_frames or 1  # type: ignore[union-attr]
    frames, latent = np.array([float(c), 2.0 * c + 1]), np.array([float(k), 2.0 * k + 1])
    one = np.ones(2)
    encoder, decoder = vae_params(spec)
    assert param_count(vae_encoder_ledger(spec, (frames, 64 * one, 64 * one))) == encoder
    assert param_count(vae_decoder_ledger(spec, (latent, 4 * one, 4 * one), num_frames=frames)) == decoder
