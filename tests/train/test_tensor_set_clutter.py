"""TensorSet.clutter_masks: taken from a dataset that has them, shape-checked, sliced by head()."""

import pytest
import torch

from attnlab.data import TensorImageDataset
from attnlab.train import TensorSet, as_tensor_set


class Cluttered(TensorImageDataset):
    """A tiny dataset with boxes, object masks and clutter masks (clutter: the right half, object: a square)."""

    def __init__(self, n: int = 6, size: int = 8, clutter_shape=None):
        super().__init__(torch.zeros(n, 1, size, size, dtype=torch.uint8), torch.arange(n) % 2, ["a", "b"])
        self.boxes = torch.tensor([[1, 1, 3, 3]] * n)
        self.masks = torch.zeros(n, size, size, dtype=torch.bool)
        self.masks[:, 1:3, 1:3] = True
        self.clutter_masks = torch.zeros(clutter_shape or (n, size, size), dtype=torch.bool)
        self.clutter_masks[..., size // 2:] = True

    boxes = masks = clutter_masks = None  # plain attributes here (the base defines read-only properties)


def test_clutter_masks_are_taken_and_sliced():
    ds = Cluttered()
    assert as_tensor_set(ds).clutter_masks is None  # only with localisation
    ts = as_tensor_set(ds, localisation=True)
    assert torch.equal(ts.clutter_masks, ds.clutter_masks)
    head = ts.head(2)
    assert head.clutter_masks.shape == (2, 8, 8) and head.masks.shape == (2, 8, 8) and len(head) == 2
    assert TensorSet(ds.images, ds.labels).head(3).clutter_masks is None
    plain = TensorImageDataset(ds.images, ds.labels, ["a", "b"])  # its clutter_masks is None
    assert as_tensor_set(plain, localisation=True).clutter_masks is None


def test_clutter_masks_of_another_shape_are_refused():
    with pytest.raises(ValueError, match=r"Cluttered\.clutter_masks must be \(6, 8, 8\), got \(6, 8, 7\)"):
        as_tensor_set(Cluttered(clutter_shape=(6, 8, 7)), localisation=True)
