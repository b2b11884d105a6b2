"""Attention modules for CNNs, one family per file, behind one registry.

Every module maps (N, C, H, W) to (N, C, H, W) and can report the attention it applied through the
recording protocol of :mod:`attnlab.attention.base`.
"""

from .a2 import DoubleAttention
from .bam import BAM
from .base import PLACEMENTS, AttentionMaps, AttentionModule, reduced_channels
from .cbam import CBAM, ChannelAttention, SpatialAttention
from .cca import CrissCrossAttention
from .ceca import CircularECA
from .channel_gate import ChannelGateModule
from .coord import CoordAttention
from .danet import DANET_BRANCHES, ChannelSelfAttention, DualAttention, PositionAttention
from .eca import EfficientChannelAttention, eca_kernel_size
from .ela import ELA_VARIANTS, EfficientLocalAttention
from .ema import EfficientMultiScaleAttention
from .ese import EffectiveSE
from .fca import FCA_FREQUENCIES, MultiSpectralAttention, dct_filters, fca_frequencies
from .gc import GlobalContext
from .ge import GE_VARIANTS, GatherExcite
from .lcbam import LightCBAM
from .non_local import NON_LOCAL_MODES, NonLocal
from .recording import attention_modules, record_attention
from .registry import create_attention, get_attention_class, list_attention, register_attention
from .sa import ShuffleAttention
from .scse import SCSE
from .se import SqueezeExcitation
from .simam import SimAM
from .sk import SelectiveKernel
from .splat import SplitAttention
from .srm import StyleRecalibration, style_pool
from .strip import STRIP_VARIANTS, StripPooling
from .triplet import TripletAttention

__all__ = [
    "AttentionMaps",
    "AttentionModule",
    "BAM",
    "CBAM",
    "ChannelAttention",
    "ChannelGateModule",
    "ChannelSelfAttention",
    "CircularECA",
    "CoordAttention",
    "CrissCrossAttention",
    "DANET_BRANCHES",
    "DoubleAttention",
    "DualAttention",
    "ELA_VARIANTS",
    "EffectiveSE",
    "EfficientChannelAttention",
    "EfficientLocalAttention",
    "EfficientMultiScaleAttention",
    "FCA_FREQUENCIES",
    "GE_VARIANTS",
    "GatherExcite",
    "GlobalContext",
    "LightCBAM",
    "MultiSpectralAttention",
    "NON_LOCAL_MODES",
    "NonLocal",
    "PLACEMENTS",
    "SCSE",
    "STRIP_VARIANTS",
    "SelectiveKernel",
    "PositionAttention",
    "ShuffleAttention",
    "SimAM",
    "SpatialAttention",
    "SplitAttention",
    "SqueezeExcitation",
    "StripPooling",
    "StyleRecalibration",
    "TripletAttention",
    "attention_modules",
    "create_attention",
    "dct_filters",
    "eca_kernel_size",
    "fca_frequencies",
    "get_attention_class",
    "list_attention",
    "record_attention",
    "reduced_channels",
    "register_attention",
    "style_pool",
]
