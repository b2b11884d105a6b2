"""Fixtures of the Triton tests: where the kernels run, and block sizes small enough to launch many blocks.

Without a GPU the kernels run in Triton's interpreter on CPU tensors (``TRITON_INTERPRET=1``, which
tests/conftest.py sets before anything imports Triton); with one they run on it, compiled. Interpreted
Triton is slow: the tests keep their tensors small.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from attnlab.attention import _triton


@pytest.fixture(scope="session")
def triton_device() -> Iterator[str]:
    """``"cuda"`` where a GPU is, else ``"cpu"`` under the interpreter; skips the test without Triton."""
    if not _triton.available():
        pytest.skip("Triton is not installed (pip install 'attnlab[triton]')")
    if torch.cuda.is_available():
        yield "cuda"
    elif not _triton.interpreting():
        pytest.skip("no GPU, and TRITON_INTERPRET is off")
    elif _old_interpreter():
        pytest.skip("Triton 3.6's interpreter cannot run loops under NumPy >= 2.4 (fixed in 3.7)")
    else:
        yield "cpu"


def _old_interpreter() -> bool:
    """True for Triton <= 3.6 with NumPy >= 2.4: its interpreter converts loop bounds with ``int()`` of 1-element
    arrays, which NumPy 2.4 refuses."""
    import numpy
    import triton

    version = lambda v: tuple(int(p) for p in v.split(".")[:2])  # noqa: E731
    return version(triton.__version__) < (3, 7) and version(numpy.__version__) >= (2, 4)


@pytest.fixture
def triton_backend(triton_device: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Force the Triton kernels (``ATTNLAB_BACKEND=triton``) for one test; returns their device."""
    monkeypatch.setenv("ATTNLAB_BACKEND", "triton")
    return triton_device


@pytest.fixture
def small_blocks(triton_device: str) -> Iterator[None]:
    """Blocks of at most 4 x 4 elements and reductions split over several programs, restored after."""
    from attnlab.attention._triton import launch

    before = (launch.tuning.fast, launch.tuning.tile, launch.tuning.programs)
    launch.tuning.fast, launch.tuning.tile, launch.tuning.programs = 4, 16, 64
    yield
    launch.tuning.fast, launch.tuning.tile, launch.tuning.programs = before
