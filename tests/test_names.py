"""attnlab._names.lookup: the one name lookup behind every registry."""

from __future__ import annotations

import pytest

from attnlab._names import lookup, unknown_name_error

TABLE = {"gradcam": 1, "gradcampp": 2, "scorecam": 3}


def test_normalises_case_space_and_aliases():
    assert lookup(TABLE, "  GradCAM ", "CAM method") == 1
    assert lookup(TABLE, "Grad-CAM++", "CAM method", {"grad-cam++": "gradcampp"}) == 2


def test_unknown_name_suggests_closest_and_lists_all():
    with pytest.raises(ValueError, match=r"unknown CAM method 'scorecan'\. Did you mean 'scorecam'\? "
                                         r"Known CAM methods: gradcam, gradcampp, scorecam\."):
        lookup(TABLE, "scorecan", "CAM method")
    assert "Did you mean" not in str(unknown_name_error("CAM method", "zzzzzzzz", sorted(TABLE)))


def test_non_string_name_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match=r"CAM method names are strings, got int 3\. Known CAM methods: gradcam"):
        lookup(TABLE, 3, "CAM method")
