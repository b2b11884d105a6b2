"""Helpers for the network tests.

The networks' tests run many small convolutions; on a shared 2-core machine PyTorch's default two
intra-op threads fight the other processes and make them 10x slower, so every test here runs with one
thread (restored afterwards).
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
