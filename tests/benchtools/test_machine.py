import math

import torch

from attnlab.benchtools import load_average, machine_summary


def test_machine_summary_names_torch_and_threads():
    line = machine_summary("cpu")
    assert f"torch {torch.__version__}" in line and f"{torch.get_num_threads()} threads" in line


def test_load_average_is_a_load_or_nan():
    load = load_average()
    assert isinstance(load, float) and (load >= 0 or math.isnan(load))
