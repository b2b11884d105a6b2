"""attnlab.benchmarks.scoring and `attnlab bench scoring`: the five metrics, today's code against the reference."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attnlab.benchmarks import scoring
from attnlab.cli import main

REFERENCE = Path(__file__).resolve().parents[1] / "metrics" / "reference_scoring.py"


def test_run_times_every_metric_against_the_reference(tmp_path, capsys):
    out = tmp_path / "scoring.md"
    assert main(["bench", "scoring", "--n", "12", "--size", "20", "--repeats", "1", "--reference", str(REFERENCE),
                 "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# Scoring speed: the five localisation metrics\n\nCommand: `attnlab bench scoring")
    assert "12 maps of 20x20" in text and f"saved {out}" in capsys.readouterr().out
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ")][1:]
    assert [r[0].strip() for r in rows] == ["energy pointing game", "pointing game", "box IoU (15% of max)",
                                            "MaxBoxAccV2", "PxAP", "total"]
    assert all(float(r[4]) == 0 for r in rows)  # the same numbers as the reference


def test_without_the_reference_today_alone_is_timed():
    results = scoring.benchmark_scoring(n=6, size=16, repeats=1, reference="")
    assert len(results) == 6 and all(r.reference_seconds is None and r.speedup is None for r in results)
    assert results[-1].seconds == pytest.approx(sum(r.seconds for r in results[:-1]))


def test_a_missing_reference_is_one_clear_error(tmp_path, capsys):
    assert main(["bench", "scoring", "--n", "4", "--reference", str(tmp_path / "nope.py"), "--out", ""]) != 0
    err = capsys.readouterr().err
    assert "no reference implementation at" in err and "Traceback" not in err


def test_synthetic_maps_look_like_the_study_s():
    maps, boxes, masks = scoring.synthetic_maps(50, 64, seed=1)
    assert maps.shape == masks.shape == (50, 64, 64) and boxes.shape == (50, 4)
    assert float(maps.min()) == 0 and torch.allclose(maps.amax((1, 2)), torch.ones(50))
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert bool(((w >= 20) & (w <= 28) & (h >= 20) & (h <= 28)).all()) and int(boxes.max()) <= 64
    assert bool(masks.any((1, 2)).all())
    ys, xs = torch.arange(64)[:, None], torch.arange(64)[None, :]
    inside = (xs >= boxes[:, 0, None, None]) & (xs < boxes[:, 2, None, None]) & \
        (ys >= boxes[:, 1, None, None]) & (ys < boxes[:, 3, None, None])
    assert not bool((masks & ~inside).any())  # every mask lies in its box


def test_results_are_named_after_the_device():
    assert scoring.results_path("cpu") == Path("benchmarks/results/scoring-cpu.md")


def test_the_metrics_are_the_study_s():
    from attnlab.study import measure

    assert scoring.BOX_IOU_FRACTION == measure.BOX_IOU_FRACTION
    assert list(scoring.METRIC_LABELS) == ["energy_pointing_game", "pointing_game", "box_iou", "maxboxacc_v2", "pxap"]
    assert all(measure.METRIC_LABELS[k] == v for k, v in scoring.METRIC_LABELS.items())
