"""Parameter counts from the ledgers equal the reference modules' counts, and published figures."""

import pytest
from hypothesis import given

from sora_compute import load_preset
from sora_compute.calibration.build import build_dit, build_text_encoder, build_vae
from sora_compute.evaluate.params import dit_params, text_encoder_params, vae_params
from sora_compute.specs import (
    LTXVAE,
    WFVAE,
    CogVideoXVAE,
    DiTSpec,
    GenericVAE,
    MochiVAE,
    OpenSoraVAE,
    StepVideoVAE,
    TextEncoderSpec,
    VAESpec,
    WanVAE,
)

from .strategies import dit_specs, text_encoder_specs, vae_specs


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


@given(dit_specs())
def test_dit_params_from_the_ledger_equal_module(spec: DiTSpec):
    """Every weight of the reference DiT belongs to exactly one ledger op: the ledger's sum is the module's count."""
    assert dit_params(spec) == n_params(build_dit(spec, "meta"))


@given(vae_specs())
def test_vae_params_from_the_ledger_equal_module(spec: VAESpec):
    vae = build_vae(spec, "meta")
    assert vae_params(spec) == (n_params(vae.encoder), n_params(vae.decoder))


@given(text_encoder_specs())
def test_text_encoder_params_closed_form_equals_module(spec: TextEncoderSpec):
    assert text_encoder_params(spec) == n_params(build_text_encoder(spec, "meta"))


# facebookresearch/DiT train.py prints sum(p.numel() for p in model.parameters()), which includes the
# frozen sin-cos table pos_embed (1, 256, 1152) at 256x256: "DiT Parameters: 675,129,632" for DiT-XL/2.
# Our position table is computed on the fly, so we add it back to compare.
def test_dit_xl_2_equals_facebookresearch_count():
    p = load_preset("dit-xl-2")
    module = build_dit(p.model.dit, "meta")
    tokens = p.model.latent_shape(p.video).tokens
    assert tokens == 256
    assert n_params(module) == dit_params(p.model.dit) == 674_834_720
    assert dit_params(p.model.dit) + tokens * 1152 == 675_129_632


@pytest.mark.parametrize("name", [f"dit-{s}-{p}" for s in ("s", "b", "l", "xl") for p in (2, 4, 8)])
def test_dit_family_params_match_paper_table4(name):
    """Paper Table 4 params (33M/130M/458M/675M) within 1%, and exact against the module."""
    p = load_preset(name)
    assert n_params(build_dit(p.model.dit, "meta")) == dit_params(p.model.dit)
    assert dit_params(p.model.dit) == pytest.approx(p.published["params"], rel=0.01)


def test_sd_vae_params_match_diffusers():
    """SD kl-f8 VAE (diffusers AutoencoderKL, sd-vae-ft-mse): 83,653,863 parameters, with the 1x1 quant_conv
    (8*8+8) in our encoder and the post_quant_conv (4*4+4) in our decoder."""
    vae = load_preset("dit-xl-2").model.vae
    assert sum(vae_params(vae)) == 83_653_863
    assert sum(vae_params(vae.model_copy(update={"quant_convs": False}))) == 83_653_863 - 72 - 20


def test_t5_xxl_encoder_params():
    """T5 v1.1 XXL encoder: 4.76B parameters (embedding 32128 x 4096 + 24 layers)."""
    te = load_preset("sora").model.text_encoder
    assert te is not None
    assert n_params(build_text_encoder(te, "meta")) == text_encoder_params(te) == 4_762_310_656


def test_counts_are_exact_python_ints_beyond_int64():
    d = 2**20
    one, huge = (DiTSpec(depth=n, hidden_size=d, num_heads=2**10) for n in (1, 10**6))
    block = (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d) + (6 * d * d + 6 * d)
    assert isinstance(dit_params(huge), int)
    assert dit_params(huge) > 2**63  # would overflow int64
    assert dit_params(huge) - dit_params(one) == (10**6 - 1) * block


# ------------------------------------------------------------------------------------------------
# Step-Video-T2V's Video-VAE v2 (StepVideoVAE(z_channels=64, version=2)): 17-frame chunks of 3 latent frames
STEPVIDEO_VAE = StepVideoVAE(latent_channels=64, spatial_compression=16, temporal_compression=8,
                        block_out_channels=(128, 256, 512, 512), stem_channels=32, layers_per_block=2,
                        chunk_frames=17, chunk_latent_frames=3)

# Open-Sora-Plan v1.3's WF-VAE-S: 4x8x8, 8 latent channels, Haar wavelet input, energy-flow branches
WFVAE_VAE = WFVAE(latent_channels=8, spatial_compression=8, temporal_compression=4,
                    block_out_channels=(128, 256, 512), layers_per_block=2, energy_flow_channels=(64, 128))

# Published VAEs built block for block (VAESpec.family). Counts from diffusers 0.42.1 built on the meta device at
# each class's defaults (accelerate.init_empty_weights(); sum(p.numel())), split into encoder and decoder. Wan's
# quant_conv (1,056) is counted in the encoder and post_quant_conv (272) in the decoder; the others have none.
# ------------------------------------------------------------------------------------------------

FAMILY_VAES = {
    # AutoencoderKLWan(): base_dim 96, dim_mult (1, 2, 4, 4), num_res_blocks 2, z_dim 16, temperal_downsample
    # (False, True, True): 126,892,531 in all (the Wan paper: "127M")
    "wan": (WanVAE(block_out_channels=(96, 192, 384, 384), layers_per_block=2),
            53_595_872 + 1_056, 73_295_331 + 272),
    # AutoencoderKLCogVideoX(): (128, 256, 256, 512), layers_per_block 3, latent 16: 215,583,907
    "cogvideox": (CogVideoXVAE(block_out_channels=(128, 256, 256, 512), layers_per_block=3), 92_215_456,
                  123_368_451),
    # AutoencoderKLMochi(): encoder (64, 128, 256, 384), decoder (128, 256, 512, 768), layers (3, 3, 4, 6, 3),
    # temporal expansions (1, 2, 3), latent 12: 459,748,611 (genmoai/mochi's README "362M" is the decoder)
    "mochi": (MochiVAE(latent_channels=12, temporal_compression=6, temporal_factors=(1, 2, 3),
                      block_out_channels=(64, 128, 256, 384), decoder_block_out_channels=(128, 256, 512, 768),
                      layers_per_level=(3, 3, 4, 6, 3)), 97_222_016, 362_526_595),
    # AutoencoderKLLTXVideo() (0.9.0): (128, 256, 512, 512), layers (4, 3, 3, 3, 4), patch 4, latent 128: 419,193,649
    "ltx": (LTXVAE(latent_channels=128, spatial_compression=32, temporal_compression=8, patch_size=4,
                    block_out_channels=(128, 256, 512, 512), layers_per_level=(4, 3, 3, 3, 4)),
            180_404_353, 238_789_296),
    # Open-Sora 1.2 OpenSoraVAE_V1_2 (hpcaitech/Open-Sora opensora/models/vae/vae.py): the SDXL VAE (diffusers
    # AutoencoderKL, (128, 256, 512, 512), 2 layers, latent 4: encoder 34,163,592 + quant_conv 72, decoder 49,490,179
    # + post_quant_conv 20; 83,653,863 in all) and VAE_Temporal_SD (vae_temporal.py built on meta: encoder 144,421,128
    # + quant_conv 72, decoder 165,265,924 + post_quant_conv 20; 309,687,144 in all) = 393,341,007. Published
    # (docs/report_03.md): "300M" temporal + "83M" 2D = "384M".
    "opensora": (OpenSoraVAE(latent_channels=4, temporal_block_out_channels=(128, 256, 256, 512),
                         layers_per_level=(4, 4, 4, 4, 4), chunk_frames=17, chunk_latent_frames=5),
                 34_163_592 + 72 + 144_421_128 + 72, 49_490_179 + 20 + 165_265_924 + 20),
    # Step-Video-T2V Video-VAE v2: StepFun's StepVideoVAE(in_channels=3, out_channels=3, z_channels=64,
    # num_res_blocks=2, version=2) (vendored in modelscope/DiffSynth-Studio diffsynth/models/stepvideo_vae.py, commit
    # 3681adc5) built on meta: encoder 109,885,696, decoder 388,933,123; 498,818,819 in all. No published figure.
    "stepvideo": (STEPVIDEO_VAE, 109_885_696, 388_933_123),
    # Open-Sora-Plan v1.3.0 WF-VAE-S: WFVAEModel(latent_dim=8, base_channels=128, encoder_num_resblocks=2,
    # encoder_energy_flow_hidden_size=64, decoder_num_resblocks=2, decoder_energy_flow_hidden_size=128,
    # use_attention=True, norm_type="groupnorm") from PKU-YuanGroup/Open-Sora-Plan
    # opensora/models/causalvideovae/model/vae/modeling_wfvae.py @1868311260ad664172c7c77ec49e25dd109d0032 (its
    # Decoder's connect_res_layer_num default 2; the modules copied into a scratch file without einops) built on meta:
    # encoder 37,182,288 (64 of them the frozen Haar 3D conv weights), decoder 110,165,436. Published
    # (docs/Report-v1.3.0.md): "38M + 108M" (108,394,428 with one energy-flow ResnetBlock3D per decoder branch).
    "wfvae": (WFVAE_VAE, 37_182_288, 110_165_436),
}


@pytest.mark.parametrize("family", sorted(FAMILY_VAES))
def test_family_vae_params_equal_module_and_diffusers(family):
    spec, encoder, decoder = FAMILY_VAES[family]
    vae = build_vae(spec, "meta")
    assert (n_params(vae.encoder), n_params(vae.decoder)) == vae_params(spec) == (encoder, decoder)


SMALL_FAMILY_VAES = [
    WanVAE(latent_channels=4, block_out_channels=(8, 16, 16, 24), layers_per_block=1),
    WanVAE(latent_channels=3, block_out_channels=(4, 8), spatial_compression=2, temporal_compression=1),
    CogVideoXVAE(latent_channels=4, block_out_channels=(8, 16, 16, 24), layers_per_block=2,
            norm_groups=4, temporal_compression=8),
    CogVideoXVAE(latent_channels=2, block_out_channels=(4, 8), spatial_compression=2,
            temporal_compression=1, norm_groups=2),
    MochiVAE(latent_channels=4, block_out_channels=(32, 32, 64), decoder_block_out_channels=(32, 64, 96),
            spatial_compression=4, temporal_compression=6, temporal_factors=(2, 3), layers_per_level=(1, 2, 1, 2),
            norm_groups=4),
    MochiVAE(latent_channels=4, block_out_channels=(32, 64), spatial_compression=2,
            temporal_compression=2, layers_per_level=(2, 1, 1), norm_groups=8),
    LTXVAE(latent_channels=4, block_out_channels=(8, 16, 16), spatial_compression=8, patch_size=2,
            temporal_compression=4, layers_per_level=(1, 1, 2, 1)),
    LTXVAE(latent_channels=2, block_out_channels=(16, 8), spatial_compression=2,
            temporal_compression=2, layers_per_level=(1, 2, 1)),
    OpenSoraVAE(latent_channels=4, block_out_channels=(8, 16), spatial_compression=2, layers_per_block=1,
            norm_groups=4, temporal_block_out_channels=(8, 16, 16), layers_per_level=(1, 2, 1, 3)),
    OpenSoraVAE(latent_channels=2, block_out_channels=(4, 8, 8), spatial_compression=4, norm_groups=2,
            temporal_compression=2, temporal_block_out_channels=(4, 8, 6, 6), temporal_factors=(2, 1, 1),
            layers_per_level=(2, 1, 1, 1, 1), chunk_frames=3, chunk_latent_frames=2),
    StepVideoVAE(latent_channels=2, spatial_compression=16, temporal_compression=8,
            block_out_channels=(8, 16, 16, 16), decoder_block_out_channels=(8, 8, 16, 24), stem_channels=4,
            norm_groups=4, chunk_frames=9, chunk_latent_frames=2),
    StepVideoVAE(latent_channels=2, spatial_compression=8, temporal_compression=2,
            block_out_channels=(8, 16, 24), layers_per_block=1, norm_groups=4, temporal_factors=(1, 1)),
]


@pytest.mark.parametrize("spec", SMALL_FAMILY_VAES, ids=lambda s: s.family)
def test_small_family_vae_params_from_the_ledger_equal_module(spec):
    vae = build_vae(spec, "meta")
    assert vae_params(spec) == (n_params(vae.encoder), n_params(vae.decoder))


def test_mochi_frame_rule_is_six_times_causal():
    """Mochi's 6x temporal compression (1, 2, 3): 163 frames -> 28 latent frames -> 163 frames."""
    spec = FAMILY_VAES["mochi"][0]
    assert spec.latent_frames(163) == 28 and spec.decoded_frames(28) == 163
    with pytest.raises(ValueError, match="1 \\+ 6k"):
        spec.latent_frames(160)
    with pytest.raises(ValueError, match="temporal_factors"):
        MochiVAE(temporal_compression=6, temporal_factors=(1, 2, 2),
                 block_out_channels=(64, 128, 256, 384), layers_per_level=(3, 3, 4, 6, 3))
    with pytest.raises(ValueError, match="power of two"):
        GenericVAE(temporal_compression=6)


def test_opensora_vae_parts_and_published_figures():
    """The 2D part is diffusers' SDXL VAE (83,653,863 with its quant convs) and the temporal part VAE_Temporal_SD
    (309,687,144); report_03.md: "300M" + "83M" = "384M" (the temporal count is 3% above its rounded figure)."""
    spec = FAMILY_VAES["opensora"][0]
    sp, total = sum(vae_params(spec.spatial_vae)), sum(vae_params(spec))
    assert sp + 72 + 20 == 83_653_863
    assert total - sp - 72 - 20 == 309_687_144
    assert total == 393_341_007
    assert total == pytest.approx(384e6, rel=0.025)
    with pytest.raises(ValueError, match="temporal_block_out_channels"):
        OpenSoraVAE(latent_channels=4, layers_per_level=(4, 4, 4, 4, 4))
    with pytest.raises(ValueError, match="chunk_latent_frames must be ceil"):
        type(spec).model_validate(spec.model_dump() | {"chunk_latent_frames": 4})
    with pytest.raises(ValueError, match="chunk_frames\n  Extra inputs are not permitted"):  # not a generic field
        GenericVAE(chunk_frames=17, chunk_latent_frames=5)


def test_stepvideo_vae_layout_and_validation():
    """Step-Video's v2 VAE: levels (128, 256, 512, 512) behind a 32-wide stem, a 2D then two 3D boundaries plus the
    3D pixel-unshuffle head (16 x 16, t = 8), the head 32 z = 2048 channels wide; the official state dict's names."""
    spec = STEPVIDEO_VAE
    assert spec.level_temporal_factors == (1, 2, 2) and sum(vae_params(spec)) == 498_818_819
    vae = build_vae(spec, "meta")
    names = dict(vae.decoder.named_parameters())
    assert tuple(names["conv_unpatchify.conv.conv.weight"].shape) == (4096, 2048, 3, 3, 3)
    assert tuple(names["up.3.upsample.conv3d.conv1.conv.weight"].shape) == (512, 512, 3, 3, 3)
    assert tuple(names["up.1.upsample.conv.weight"].shape) == (256, 256, 3, 3)
    assert tuple(dict(vae.encoder.named_parameters())["down.0.downsample.conv.weight"].shape) == (128, 128, 3, 3)
    with pytest.raises(ValueError, match="2\\^4 = 16"):
        type(spec).model_validate(spec.model_dump() | {"spatial_compression": 8})
    with pytest.raises(ValueError, match="chunk_frames must be 1 \\+ 8j"):
        type(spec).model_validate(spec.model_dump() | {"chunk_latent_frames": 5})
    with pytest.raises(ValueError, match="temporal_factors"):
        type(spec).model_validate(spec.model_dump() | {"temporal_factors": (2, 2, 2)})
    with pytest.raises(ValueError, match="multiples of 4 x latent_channels"):
        type(spec).model_validate(spec.model_dump() | {"latent_channels": 256})
    with pytest.raises(ValueError, match="stem_channels\n  Extra inputs are not permitted"):  # a stepvideo field
        GenericVAE(stem_channels=32)
