"""Attention modules for CNNs, one family per file, behind one registry.

Every module maps (N, C, H, W) to (N, C, H, W) and can report the attention it applied through the
recording protocol of :mod:`attnlab.attention.base`.
"""

from .base import AttentionMaps, AttentionModule, reduced_channels
from .cbam import CBAM, ChannelAttention, SpatialAttention
from .eca import EfficientChannelAttention, eca_kernel_size
from .recording import attention_modules, record_attention
from .registry import create_attention, get_attention_class, list_attention, register_attention
from .se import SqueezeExcitation

__all__ = [
    "AttentionMaps",
    "AttentionModule",
    "CBAM",
    "ChannelAttention",
    "EfficientChannelAttention",
    "SpatialAttention",
    "SqueezeExcitation",
    "attention_modules",
    "create_attention",
    "eca_kernel_size",
    "get_attention_class",
    "list_attention",
    "record_attention",
    "reduced_channels",
    "register_attention",
]
