"""attnlab bench jobs: the three ways of training a study's runs on a CPU, timed and written as a table."""

import pytest

from attnlab.benchmarks import jobs as bench_jobs
from attnlab.data.fashion_mnist import fashion_mnist_root


@pytest.mark.slow
@pytest.mark.skipif(not any(fashion_mnist_root().glob("train-images-idx3-ubyte*")), reason="Fashion-MNIST missing")
def test_bench_jobs_times_each_way_and_writes_its_table(tmp_path):
    out = tmp_path / "jobs.md"
    seconds = bench_jobs.run(out=out, limit_train=64, rounds=1, models=("vanilla",))
    assert len(seconds) == 3 and all(len(s) == 1 and s[0] > 0 for s in seconds.values())
    text = out.read_text()
    assert text.startswith("# A study's runs on a CPU: serial or in processes\n\nCommand: `attnlab bench jobs`")
    assert "| serial, 1 thread per run (--jobs 1) |" in text
