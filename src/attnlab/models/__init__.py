"""Networks with attention where the papers put it, and attention plugged into any model.

* :func:`create_model` / :func:`list_models`: the model zoo (ImageNet and CIFAR ResNets, MobileNetV2;
  torchvision's state_dict names), with any registered attention module in its paper's place.
* :func:`attach` / :func:`detach`: insert attention into (and remove it from) a model you already have.
* :func:`load_backbone`: load a plain checkpoint into an attention network and report the keys.
* :func:`convert_checkpoint`: the authors' released checkpoints (official CBAM/BAM and ECA-Net code, timm's
  SE/ECA ResNets) converted key by key to these networks, with a report of every key.

Floor 3: imports ``attnlab.attention`` (and the floor-0 name lookup) only.
"""

from ._attn import AttentionOptionError
from .attach import attach, detach, find_blocks, find_stages
from .convert import CHECKPOINT_LAYOUTS, ConvertedCheckpoint, convert_checkpoint
from .loading import LoadReport, load_backbone
from .mobilenet import InvertedResidual, MobileNetV2
from .registry import create_model, get_model_builder, list_models, register_model
from .resnet import NONLOCAL_SETTINGS, PLACEMENTS, BasicBlock, Bottleneck, ResNet, default_placement, nonlocal_positions

__all__ = [
    "AttentionOptionError",
    "BasicBlock",
    "Bottleneck",
    "CHECKPOINT_LAYOUTS",
    "ConvertedCheckpoint",
    "InvertedResidual",
    "LoadReport",
    "MobileNetV2",
    "NONLOCAL_SETTINGS",
    "PLACEMENTS",
    "ResNet",
    "attach",
    "convert_checkpoint",
    "create_model",
    "default_placement",
    "detach",
    "find_blocks",
    "find_stages",
    "get_model_builder",
    "list_models",
    "load_backbone",
    "nonlocal_positions",
    "register_model",
]
