"""Training and evaluation: one loop from CPU to many GPUs (torchrun), atomic checkpoints, exact resume."""

from ..fileio import SafetensorsError, load_safetensors, save_safetensors  # re-exported: public here since 0.1
from .batches import TensorSet, as_tensor_set, iterate_batches
from .checkpoint import (
    Checkpoint,
    CheckpointError,
    checkpoint_problem,
    latest_checkpoint,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
)
from .config import TrainConfig, affects_result, result_changes
from .distributed import DistInfo, init_distributed, shard_permutation
from .evaluate import EvalResult, evaluate
from .load import evaluate_checkpoint, load_model, model_from_checkpoint
from .loop import METRIC_COLUMNS, DataBundle, TrainingInterrupted, TrainResult, build_data, train
from .optim import create_optimizer, param_groups, warmup_cosine
from .sync_batchnorm import SyncBatchNorm, convert_sync_batchnorm

__all__ = [
    "METRIC_COLUMNS", "Checkpoint", "CheckpointError", "DataBundle", "DistInfo", "EvalResult", "SafetensorsError",
    "TensorSet", "SyncBatchNorm", "TrainConfig", "TrainResult", "TrainingInterrupted", "affects_result",
    "as_tensor_set", "build_data", "checkpoint_problem", "convert_sync_batchnorm", "create_optimizer", "evaluate",
    "evaluate_checkpoint", "init_distributed", "iterate_batches", "latest_checkpoint", "load_checkpoint",
    "load_model", "load_safetensors", "model_from_checkpoint", "param_groups", "remove_stale_temporaries",
    "result_changes", "save_checkpoint", "save_safetensors", "shard_permutation", "train", "warmup_cosine",
]
