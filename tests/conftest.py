"""Shared test helpers: build any registered attention module with random, non-degenerate state.

Freshly initialised modules hide bugs: Non-Local's output BN and GC's last conv start at zero, so
every gradient behind them is zero and a wrong backward goes unnoticed. ``randomize_module`` gives
every parameter a random non-zero value and every BatchNorm random running statistics, from a seed.

Any test taking an ``attn_name`` argument is parametrised over the registry
(``attnlab.list_attention()``), so a newly registered module is tested without touching the tests.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
from torch import nn

# Without a GPU the Triton kernels are tested in Triton's interpreter, which must be chosen before Triton is first
# imported (anything importing torch._dynamo imports it): see tests/attention/conftest.py.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import attnlab  # noqa: E402

TESTS = Path(__file__).parent
_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def registered_names() -> list[str]:
    """Every registered attention name, sorted (the registry as imported at collection time)."""
    return attnlab.list_attention()


def _nonzero(shape: torch.Size, g: torch.Generator, low: float, high: float) -> torch.Tensor:
    """Uniform magnitudes in [low, high) with random signs: never zero."""
    mag = torch.rand(shape, generator=g) * (high - low) + low
    sign = torch.randint(0, 2, shape, generator=g) * 2 - 1
    return mag * sign


@torch.no_grad()
def randomize_module(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give ``module`` random non-zero parameters and random BN running statistics, in place.

    * weights with fan-in (dim >= 2): N(0, 1/fan_in), so activations keep unit scale and the sigmoid
      gates are not saturated;
    * norm-layer scales: 1 +/- U(0.05, 0.3) (never zero);
    * other 1-D / scalar parameters (biases, learnable gammas): U(0.1, 0.5), positive, so that a
      ReLU after a narrow bottleneck (width 2 at C=32, r=16) is rarely dead for the whole batch;
    * BatchNorm running_mean: N(0, 0.1^2), running_var: U(0.5, 1.5).

    Returns the module, for chaining.
    """
    g = torch.Generator().manual_seed(seed)
    for sub in module.modules():
        for pname, p in sub.named_parameters(recurse=False):
            if isinstance(sub, _NORMS) and pname == "weight":
                new = 1 + _nonzero(p.shape, g, 0.05, 0.3)
            elif p.dim() >= 2:
                fan_in = max(1, p[0].numel())
                new = torch.randn(p.shape, generator=g) / math.sqrt(fan_in)
                # randn is non-zero almost surely; make "almost" certain for tiny tensors
                new = torch.where(new == 0, torch.full_like(new, 1e-3), new)
            else:
                new = torch.rand(p.shape, generator=g) * 0.4 + 0.1
            p.copy_(new.to(p.dtype))
        for bname, b in sub.named_buffers(recurse=False):
            if bname == "running_mean":
                b.copy_((torch.randn(b.shape, generator=g) * 0.1).to(b.dtype))
            elif bname == "running_var":
                b.copy_((torch.rand(b.shape, generator=g) + 0.5).to(b.dtype))
    return module


def build_attention(
    name: str, channels: int = 32, seed: int = 0, dtype: torch.dtype = torch.float32, **kwargs
) -> nn.Module:
    """``create_attention(name, channels, **kwargs)`` with random state (see ``randomize_module``)."""
    module = attnlab.create_attention(name, channels, **kwargs)
    randomize_module(module, seed)
    return module.to(dtype)


def random_input(*shape: int, seed: int = 1, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A seeded N(0, 1) tensor of ``shape`` (continuous: no ties in max-pooling, almost surely)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)


def has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


@pytest.fixture
def make_attention():
    """The ``build_attention`` factory: ``make_attention(name, channels=32, seed=0, dtype=..., **kwargs)``."""
    return build_attention


@pytest.fixture
def make_input():
    """The ``random_input`` factory: ``make_input(*shape, seed=1, dtype=...)``."""
    return random_input


@pytest.fixture
def one_thread():
    """Run the test with one intra-op thread (restored after).

    For tiny tensors and loops of thousands of small ops (gradcheck, small convolutions): one thread is
    faster there, and does not slow down tenfold when the machine is busy, as OpenMP's spinning worker
    threads do when they fight other processes for a shared 2-core machine.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


#: Test folders (under tests/) whose every test runs with ``one_thread``: their tensors are all tiny.
#: A single test module elsewhere opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
ONE_THREAD_FOLDERS = frozenset({"cam", "metrics", "models", "viz"})


@pytest.fixture(autouse=True)
def _one_thread_in_small_tensor_folders(request: pytest.FixtureRequest) -> None:
    """Apply ``one_thread`` to every test in ``ONE_THREAD_FOLDERS``."""
    if any(request.path.is_relative_to(TESTS / folder) for folder in ONE_THREAD_FOLDERS):
        request.getfixturevalue("one_thread")


@pytest.fixture(autouse=True)
def _seed_everything():
    """Seed torch's global generator for every test, so any unseeded draw is reproducible."""
    torch.manual_seed(0)
    yield


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise every test that takes ``attn_name`` over the whole registry."""
    if "attn_name" in metafunc.fixturenames:
        metafunc.parametrize("attn_name", registered_names())
