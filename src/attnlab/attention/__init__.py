"""Attention modules for CNNs, one family per file, behind one registry.

Every module maps (N, C, H, W) to (N, C, H, W) and can report the attention it applied through the
recording protocol of :mod:`attnlab.attention.base`.
"""

from .a2 import DoubleAttention
from .bam import BAM
from .base import PLACEMENTS, AttentionMaps, AttentionModule, reduced_channels
from .cbam import CBAM, ChannelAttention, SpatialAttention
from .cca import CrissCrossAttention
from .channel_gate import ChannelGateModule
from .coord import CoordAttention
from .danet import DANET_BRANCHES, DualAttention
from .eca import EfficientChannelAttention, eca_kernel_size
from .ema import EfficientMultiScaleAttention
from .fca import FCA_FREQUENCIES, MultiSpectralAttention, dct_filters, fca_frequencies
from .gc import GlobalContext
from .non_local import NON_LOCAL_MODES, NonLocal
from .recording import attention_modules, record_attention
from .registry import create_attention, get_attention_class, list_attention, register_attention
from .sa import ShuffleAttention
from .scse import SCSE
from .se import SqueezeExcitation
from .simam import SimAM
from .srm import StyleRecalibration, style_pool
from .triplet import TripletAttention

__all__ = [
    "AttentionMaps",
    "AttentionModule",
    "BAM",
    "CBAM",
    "ChannelAttention",
    "ChannelGateModule",
    "CoordAttention",
    "CrissCrossAttention",
    "DANET_BRANCHES",
    "DoubleAttention",
    "DualAttention",
    "EfficientChannelAttention",
    "EfficientMultiScaleAttention",
    "FCA_FREQUENCIES",
    "GlobalContext",
    "MultiSpectralAttention",
    "NON_LOCAL_MODES",
    "NonLocal",
    "PLACEMENTS",
    "SCSE",
    "ShuffleAttention",
    "SimAM",
    "SpatialAttention",
    "SqueezeExcitation",
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
