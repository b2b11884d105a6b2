"""TensorSet and build_data: the test split carries the dataset's boxes and masks where it has them."""

import pytest
import torch

from attnlab.data import TensorImageDataset, write_idx
from attnlab.train import TensorSet, TrainConfig, as_tensor_set, build_data


class Boxed(TensorImageDataset):
    """A tiny dataset whose images carry one located object each."""

    def __init__(self, n: int = 6, size: int = 8, box_shape=None):
        super().__init__(torch.randint(0, 255, (n, 1, size, size), dtype=torch.uint8), torch.arange(n) % 2, ["a", "b"])
        boxes = torch.tensor([[1, 1, 4, 4]] * n)
        self._boxes = boxes if box_shape is None else torch.zeros(box_shape, dtype=torch.int64)
        self._masks = torch.zeros(n, size, size, dtype=torch.bool)
        self._masks[:, 1:4, 1:4] = True

    @property
    def boxes(self):
        return self._boxes

    @property
    def masks(self):
        return self._masks


def test_localisation_is_taken_only_when_asked_and_head_slices_it():
    ds = Boxed()
    assert as_tensor_set(ds).boxes is None and as_tensor_set(ds).masks is None
    ts = as_tensor_set(ds, localisation=True)
    assert ts.boxes.shape == (6, 4) and ts.masks.shape == (6, 8, 8)
    head = ts.head(4)
    assert len(head) == 4 and head.boxes.shape == (4, 4) and head.masks.shape == (4, 8, 8)
    assert ts.head(None) is ts and ts.head(0) is ts
    plain = TensorImageDataset(ds.images, ds.labels, ["a", "b"])
    assert plain.boxes is None and as_tensor_set(plain, localisation=True).boxes is None
    assert TensorSet(ds.images, ds.labels).head(2).boxes is None


def test_boxes_of_another_length_are_refused():
    with pytest.raises(ValueError, match=r"boxes must be \(6, 4\)"):
        as_tensor_set(Boxed(box_shape=(5, 4)), localisation=True)


def test_build_data_gives_the_test_split_its_boxes_from_data_root(tmp_path):
    g = torch.Generator().manual_seed(0)
    for prefix, n in (("train", 20), ("t10k", 12)):
        items = torch.zeros(n, 28, 28, dtype=torch.uint8)
        items[:, 8:20, 6:18] = torch.randint(1, 256, (n, 12, 12), generator=g, dtype=torch.uint8)
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", items)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", (torch.arange(n) % 10).to(torch.uint8))
    cfg = TrainConfig(dataset="cluttered-fashion-mnist", data_root=str(tmp_path), limit_test=5,
                      dataset_kwargs={"canvas": 32, "n_clutter": 1, "fragment_size": 5, "cache": False})
    data = build_data(cfg)
    assert data.train.boxes is None and data.train.masks is None  # training needs neither
    assert len(data.test) == 5 and data.test.boxes.shape == (5, 4) and data.test.masks.shape == (5, 32, 32)
    inside = data.test.masks.flatten(1).any(1)
    assert bool(inside.all())  # every canvas has its object
    assert data.test.boxes[:, 2:].le(32).all() and (data.test.boxes[:, 2:] > data.test.boxes[:, :2]).all()
    assert build_data(TrainConfig(dataset="fashion-mnist", data_root=str(tmp_path))).test.boxes is None
