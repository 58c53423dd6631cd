"""The reference 3D VAEs: ``VAE3D`` picks a family's encoder and decoder (``FAMILIES``); one module per family
(``generic``: the layout-driven VAE in the style of the CogVideoX and HunyuanVideo VAEs; ``wan``, ``cogvideox``,
``mochi``, ``ltx``, ``opensora``, ``stepvideo``, ``wfvae``: the published VAEs block for block), ``common`` for the
config and the blocks they share. Every name is re-exported here, so ``from reference_model.vae import X`` keeps
working.
"""

from __future__ import annotations

import torch
from torch import nn

from reference_model.vae.cogvideox import (
    CogDecoder,
    CogDownsample,
    CogEncoder,
    CogLevel,
    CogResnet,
    CogUpsample,
    SpatialNorm3D,
)
from reference_model.vae.common import (
    AttnBlock3D,
    ChannelRMSNorm,
    Conv3d,
    Downsample3D,
    FramePadConv3d,
    Level,
    MidBlock3D,
    ResnetBlock3D,
    Upsample3D,
    VAEConfig,
    channel_rms_norm,
    from_frames,
    per_frame,
    pixel_shuffle,
    pixel_unshuffle,
)
from reference_model.vae.generic import (
    Decoder3D,
    Encoder3D,
)
from reference_model.vae.ltx import (
    LTXDecoder,
    LTXDownLevel,
    LTXEncoder,
    LTXResnet,
    LTXUpLevel,
    LTXUpsample,
)
from reference_model.vae.mochi import (
    MOCHI_HEAD_DIM,
    MochiAttention,
    MochiBlock,
    MochiDecoder,
    MochiDown,
    MochiEncoder,
    MochiResnet,
    MochiUp,
    PerFrameGroupNorm,
    channels_last_linear,
)
from reference_model.vae.opensora import (
    OPENSORA_MICRO_BATCH,
    OpenSoraDecoder,
    OpenSoraEncoder,
    OSCausalConv3d,
    OSResBlock,
    OSTemporalDecoder,
    OSTemporalEncoder,
    OSTimeUp,
    spatial_config,
)
from reference_model.vae.stepvideo import (
    STEPVIDEO_HEAD,
    StepVideoDecoder,
    StepVideoEncoder,
    SVAfterNormConv,
    SVAttention,
    SVCausalConv,
    SVChannelLastConv,
    SVDownsample2D,
    SVDownsample3D,
    SVLevel,
    SVMid,
    SVResnet,
    SVResUpsample,
    SVShuffleConv,
    SVUnshuffleConv,
    SVUpsample2D,
    SVUpsample3D,
    sv_channel_average,
    sv_channel_duplicate,
    sv_conv_channel_last,
    sv_frame_norm,
    sv_norm_zero_pad,
    sv_shuffle,
    sv_unshuffle,
)
from reference_model.vae.wan import (
    WanAttention,
    WanCausalConv3d,
    WanDecoder,
    WanDownsample,
    WanEncoder,
    WanMid,
    WanResnet,
    WanUpsample,
)
from reference_model.vae.wfvae import (
    HAAR_2D,
    HAAR_2D_NAMES,
    HAAR_3D,
    HAAR_3D_NAMES,
    WFVAE_FLOW_LAYERS,
    WFAttnBlock3DFix,
    WFCausalConv3d,
    WFConv2d,
    WFDownsample,
    WFHaar2D,
    WFHaar3D,
    WFInverseHaar2D,
    WFInverseHaar3D,
    WFResnetBlock2D,
    WFResnetBlock3D,
    WFSpatial2xTime2x3DDownsample,
    WFSpatial2xTime2x3DUpsample,
    WFUpsample,
    WFVAEDecoder,
    WFVAEEncoder,
    wf_per_frame,
    wf_silu,
)

FAMILIES: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "generic": (Encoder3D, Decoder3D),
    "wan": (WanEncoder, WanDecoder),
    "cogvideox": (CogEncoder, CogDecoder),
    "mochi": (MochiEncoder, MochiDecoder),
    "ltx": (LTXEncoder, LTXDecoder),
    "opensora": (OpenSoraEncoder, OpenSoraDecoder),
    "stepvideo": (StepVideoEncoder, StepVideoDecoder),
    "wfvae": (WFVAEEncoder, WFVAEDecoder),
}


class VAE3D(nn.Module):
    """Encoder and decoder; ``encode`` returns the posterior mean (sampling adds no FLOPs of note)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        encoder, decoder = FAMILIES[cfg.family]
        self.encoder = encoder(cfg)
        self.decoder = decoder(cfg)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        moments = self.encoder(x)
        return moments[:, : self.cfg.latent_channels]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


__all__ = [
    "VAE3D", "FAMILIES", "VAEConfig", "Conv3d", "ResnetBlock3D", "AttnBlock3D", "MidBlock3D", "Downsample3D",
    "Upsample3D", "Level", "pixel_unshuffle", "pixel_shuffle", "channel_rms_norm", "ChannelRMSNorm",
    "FramePadConv3d", "per_frame", "from_frames", "Encoder3D", "Decoder3D", "WanCausalConv3d", "WanResnet",
    "WanAttention", "WanMid", "WanDownsample", "WanUpsample", "WanEncoder", "WanDecoder", "SpatialNorm3D",
    "CogResnet", "CogDownsample", "CogUpsample", "CogLevel", "CogEncoder", "CogDecoder", "MOCHI_HEAD_DIM",
    "channels_last_linear", "PerFrameGroupNorm", "MochiResnet", "MochiAttention", "MochiBlock", "MochiDown",
    "MochiUp", "MochiEncoder", "MochiDecoder", "LTXResnet", "LTXDownLevel", "LTXUpsample", "LTXUpLevel",
    "LTXEncoder", "LTXDecoder", "OPENSORA_MICRO_BATCH", "spatial_config", "OSCausalConv3d", "OSResBlock",
    "OSTimeUp", "OSTemporalEncoder", "OSTemporalDecoder", "OpenSoraEncoder", "OpenSoraDecoder", "STEPVIDEO_HEAD",
    "sv_frame_norm", "sv_norm_zero_pad", "sv_conv_channel_last", "SVCausalConv", "SVChannelLastConv",
    "SVAfterNormConv", "SVResnet", "SVAttention", "SVMid", "SVDownsample2D", "SVDownsample3D", "SVLevel",
    "sv_unshuffle", "sv_channel_average", "sv_shuffle", "sv_channel_duplicate", "SVUnshuffleConv", "SVShuffleConv",
    "SVResUpsample", "SVUpsample3D", "SVUpsample2D", "StepVideoEncoder", "StepVideoDecoder", "WFVAE_FLOW_LAYERS",
    "HAAR_3D", "HAAR_3D_NAMES", "HAAR_2D", "HAAR_2D_NAMES", "wf_per_frame", "WFConv2d", "WFCausalConv3d", "wf_silu",
    "WFResnetBlock2D", "WFResnetBlock3D", "WFAttnBlock3DFix", "WFDownsample", "WFUpsample",
    "WFSpatial2xTime2x3DDownsample", "WFSpatial2xTime2x3DUpsample", "WFHaar3D", "WFInverseHaar3D", "WFHaar2D",
    "WFInverseHaar2D", "WFVAEEncoder", "WFVAEDecoder",
]
