"""The native-kernel cache under concurrency: two processes building into one empty cache at once both get a
working library, and the cache ends with one whole library and no temporary files."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from attnlab.attention._kernels import available

pytestmark = [pytest.mark.skipif(not available(), reason="no C compiler: native kernels not built"),
              pytest.mark.slow]  # two full compiles (about 10 s each on a shared 2-core machine)

PROBE = "from attnlab.attention._kernels import available; print(available())"


def test_two_processes_building_at_once(tmp_path):
    env = {**os.environ, "ATTNLAB_CACHE": str(tmp_path), "ATTNLAB_NATIVE": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", PROBE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    assert [out.strip() for out, _ in outs] == ["True", "True"], [err for _, err in outs]
    files = sorted(p.name for p in (tmp_path / "kernels").iterdir())
    assert len(files) == 1 and files[0].startswith("cbam_cpu_") and files[0].endswith(".so"), files
    again = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert again.stdout.strip() == "True"  # a third process loads the cached library
    assert sorted(p.name for p in (tmp_path / "kernels").iterdir()) == files
