"""The Ray executor: an address that does not answer is one quick error, Ray missing is one line naming the extra,
each task asks for what its run needs; and (slow) a local Ray instance trains a micro study end to end, resuming a
run from its checkpoint, with the same weights as a serial study."""

import shutil
import socket
import sys
import time
from dataclasses import replace

import pytest
import torch

from attnlab.study import StudyPreset, run_study
from attnlab.study.executor import RUNS_PER_GPU, RunJob, check_executor, train_runs
from attnlab.study.executor_ray import parse_address, task_resources
from attnlab.train import TrainConfig, load_model


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_address_that_does_not_answer_is_one_clear_error_within_seconds():
    address = f"127.0.0.1:{_closed_port()}"
    t0 = time.monotonic()
    with pytest.raises(ValueError, match=f"no Ray cluster answers at {address} .*ray start --head"):
        check_executor("ray", address)
    assert time.monotonic() - t0 < 10
    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized()


@pytest.mark.parametrize("text", ["10.0.0.5", "head:port", "ray://", "10.0.0.5:0", "10.0.0.5:70000", ""])
def test_an_address_that_is_not_host_port_is_refused(text):
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        check_executor("ray", text)


def test_addresses_as_ray_prints_them_are_read():
    assert parse_address("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert parse_address(" ray://head.cluster:10001 ") == ("head.cluster", 10001)
    assert parse_address("[::1]:6379") == ("::1", 6379)


def test_ray_missing_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ValueError, match=r"pip install 'attnlab\[ray\]'"):
        check_executor("ray")


def test_each_task_asks_for_the_cpus_and_gpus_its_run_needs():
    job = RunJob(TrainConfig(device="cpu"), "run", "[vanilla seed 0]")
    assert task_resources(job, 2, {"CPU": 8}, node_cpus=8) == (2, 0.0, "cpu")
    assert task_resources(job, 16, {"CPU": 8}, node_cpus=4) == (4, 0.0, "cpu")  # no larger than a machine
    assert task_resources(replace(job, config=replace(job.config, num_threads=3)), 1, {"CPU": 8}, 8)[0] == 3
    gpu = replace(job, config=replace(job.config, device="cuda"))
    assert task_resources(gpu, 2, {"CPU": 8, "GPU": 2}, 8) == (1, 1 / RUNS_PER_GPU, "cuda")
    auto = replace(job, config=replace(job.config, device="auto"))
    assert task_resources(auto, 2, {"CPU": 8, "GPU": 1}, 8)[2] == "cuda"
    assert task_resources(auto, 2, {"CPU": 8}, 8) == (2, 0.0, "cpu")
    with pytest.raises(ValueError, match="ask for a GPU .* the Ray cluster has none"):
        task_resources(gpu, 2, {"CPU": 8}, 8)


@pytest.mark.slow
def test_a_local_ray_instance_trains_a_micro_study_resuming_a_run_from_its_checkpoint(tmp_path, rectangle_fashion):
    """Ray started (this machine's 2 CPUs) and stopped by attnlab; a run folder holding the checkpoint of epoch
    1 of 2 is resumed, not restarted; the weights are a serial local study's, bit for bit."""
    import ray

    root = rectangle_fashion(tmp_path / "fm", 96, 48)
    train = TrainConfig(dataset="cluttered-fashion-mnist", data_root=str(root), dataset_kwargs={"cache": False},
                        epochs=2, batch_size=32, lr=0.05, limit_train=96, limit_test=48)
    preset = StudyPreset(name="micro", description="a test-sized study", attentions=(None, "se"), seeds=(0,),
                         train=train, n_localisation=16, n_grid=2, throughput_batch=4, train_batch=4, repeats=1)
    local = [RunJob(replace(train, attention=a, device="cpu"), tmp_path / "local" / f"{n}-seed0", f"[{n} seed 0]")
             for a, n in ((None, "vanilla"), ("se", "se"))]
    train_runs(local, jobs_at_once=1, progress=False, log=lambda _: None)
    runs = tmp_path / "report" / "runs"
    shutil.copytree(local[1].run_dir, runs / "se-seed0")  # as a run whose worker was lost after epoch 1 leaves it
    for gone in ("checkpoints/epoch_0002", "checkpoints/latest.json", "summary.json"):
        shutil.rmtree(runs / "se-seed0" / gone) if gone.endswith("2") else (runs / "se-seed0" / gone).unlink()
    first_epoch = (runs / "se-seed0" / "checkpoints" / "epoch_0001" / "state.json").stat().st_mtime_ns
    lines: list[str] = []
    result = run_study(preset, tmp_path / "report", device="cpu", progress=False, log=lines.append, executor="ray")
    assert not ray.is_initialized()  # stopped with the study
    assert any("started a local Ray instance (2 CPUs" in line for line in lines) or __import__("os").cpu_count() != 2
    assert sum(" submitted: 1 CPU(s), 0 GPU(s), device cpu" in line for line in lines) == 2
    assert (runs / "se-seed0" / "checkpoints" / "epoch_0001" / "state.json").stat().st_mtime_ns == first_epoch
    for job in local:
        a, b = load_model(job.run_dir).state_dict(), load_model(runs / job.run_dir.name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), job.tag
    assert set(result.results.models) == {"vanilla", "se"} and (tmp_path / "report" / "results.json").is_file()
