"""Training and evaluation: one loop from CPU to many GPUs (torchrun), atomic checkpoints, exact resume."""

from ..fileio import SafetensorsError, load_safetensors, save_safetensors  # re-exported: public here since 0.1
from .batches import TensorSet, as_tensor_set, iterate_batches
from .checkpoint import Checkpoint, CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .distributed import DistInfo, init_distributed, shard_permutation
from .evaluate import EvalResult, evaluate
from .load import evaluate_checkpoint, load_model, model_from_checkpoint
from .loop import DataBundle, TrainResult, build_data, train
from .optim import create_optimizer, param_groups, warmup_cosine
from .sync_batchnorm import SyncBatchNorm, convert_sync_batchnorm

__all__ = [
    "Checkpoint", "CheckpointError", "DataBundle", "DistInfo", "EvalResult", "SafetensorsError", "TensorSet",
    "SyncBatchNorm", "TrainConfig", "TrainResult", "as_tensor_set", "build_data", "convert_sync_batchnorm",
    "create_optimizer", "evaluate", "evaluate_checkpoint", "init_distributed", "iterate_batches", "latest_checkpoint",
    "load_checkpoint", "load_model", "load_safetensors",
    "model_from_checkpoint", "param_groups", "save_checkpoint", "save_safetensors", "shard_permutation", "train",
    "warmup_cosine",
]
