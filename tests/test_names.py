"""attnlab.names: the one rule behind every registry (registering, looking up, suggesting names)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import attnlab
from attnlab.data import list_datasets
from attnlab.data.registry import register_dataset
from attnlab.models import register_model
from attnlab.names import check_name, edit_distance, lookup, max_edits, register, suggest, unknown_name_error

TABLE = {"gradcam": 1, "gradcampp": 2, "scorecam": 3}


def test_normalises_case_space_and_aliases():
    assert lookup(TABLE, "  GradCAM ", "CAM method") == 1
    assert lookup(TABLE, "Grad-CAM++", "CAM method", {"grad-cam++": "gradcampp"}) == 2


def test_unknown_name_suggests_closest_and_lists_all():
    with pytest.raises(ValueError, match=r"unknown CAM method 'scorecan'\. Did you mean 'scorecam'\? "
                                         r"Known CAM methods: gradcam, gradcampp, scorecam\."):
        lookup(TABLE, "scorecan", "CAM method")
    assert "Did you mean" not in str(unknown_name_error("CAM method", "zzzzzzzz", sorted(TABLE)))


def test_an_alias_may_be_suggested_but_is_not_listed():
    with pytest.raises(ValueError, match=r"Did you mean 'grad-cam\+\+'\? Known CAM methods: gradcam, gradcampp, "
                                         r"scorecam\.$"):
        lookup(TABLE, "grad-cam+++", "CAM method", {"grad-cam++": "gradcampp"})


def test_non_string_name_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match=r"CAM method names are strings, got int 3\. Known CAM methods: gradcam"):
        lookup(TABLE, 3, "CAM method")


@pytest.mark.parametrize("bad", ["", "SE", " se", "se ", 3, None])
def test_a_registered_name_is_a_non_empty_lower_case_string(bad):
    with pytest.raises(ValueError, match=r"widget names are non-empty and lower case, got"):
        check_name(bad, "widget")
    table: dict[str, int] = {}
    with pytest.raises(ValueError):
        register(table, bad, 1, "widget")
    assert table == {}


def test_register_refuses_a_taken_name_naming_its_entry():
    table: dict[str, object] = {}

    def first():
        """The entry that holds the name."""

    def second():
        """Another entry."""

    assert register(table, "w", first, "widget") is first
    with pytest.raises(ValueError, match=r"widget name 'w' is already registered to "
                                         r"\S*test_names\.test_register_refuses_a_taken_name_naming_its_entry"
                                         r"\.<locals>\.first; choose another name"):
        register(table, "w", second, "widget")
    assert table == {"w": first}
    assert register(table, "w", first, "widget") is first  # the same entry again: harmless


def test_every_registry_refuses_a_taken_name_and_upper_case():
    """Models, datasets and attention modules register through the same rule."""
    with pytest.raises(ValueError, match=r"model name 'resnet50' is already registered to "
                                         r"attnlab\.models\.resnet\.resnet50"):
        register_model("resnet50")(lambda **kw: None)
    with pytest.raises(ValueError, match="model names are non-empty and lower case"):
        register_model("ResNet9")(lambda **kw: None)
    with pytest.raises(ValueError, match=r"dataset name 'cifar10' is already registered to attnlab\.data"):
        register_dataset("cifar10", lambda split, root, **kw: None)
    with pytest.raises(ValueError, match="dataset names are non-empty and lower case"):
        register_dataset("CIFAR-9", lambda split, root, **kw: None)
    with pytest.raises(ValueError, match="attention module names are non-empty and lower case"):
        attnlab.register_attention("SE2")
    assert "cifar-9" not in list_datasets() and "resnet9" not in attnlab.list_models()


@pytest.mark.parametrize("a,b,d", [
    ("", "", 0), ("se", "", 2), ("", "se", 2), ("cbam", "cbam", 0),
    ("cbma", "cbam", 1),        # a swap of two adjacent letters is one edit
    ("renset50", "resnet50", 1),
    ("cmab", "cbam", 2),        # letters two apart: two substitutions
    ("sse", "se", 1), ("sse", "scse", 1), ("cmab", "eca", 3),
    ("ca", "abc", 3),           # optimal string alignment: a swapped pair is not edited again
])
def test_edit_distance(a, b, d):
    assert edit_distance(a, b) == d
    assert edit_distance(b, a) == d


def test_how_far_a_suggestion_may_be():
    assert [max_edits("x" * n) for n in (1, 3, 4, 8, 9, 12)] == [1, 1, 2, 2, 3, 4]


def test_suggest_breaks_ties_by_shared_prefix_then_length():
    assert suggest("resnet21", ["resnet18", "resnet20", "resnet32"]) == "resnet20"  # distance 1 against 2, 2
    assert suggest("abxd", ["zbcd", "abcd"]) == "abcd"        # both one edit: the longer shared prefix
    assert suggest("abcx", ["abcxyz", "abcxy"]) == "abcxy"    # same prefix: the nearer length
    assert suggest("sse", ["scse", "se"]) == "se"             # same prefix and length gap: the shorter name
    assert suggest("  CBMA ", ["cbam"]) == "cbam"
    assert suggest("nope", ["cbam", "se", "scse"]) is None    # three edits from any: no hint
    assert suggest("x", []) is None


@pytest.mark.parametrize("create,name,meant", [
    (lambda n: attnlab.create_attention(n, 8), "cmab", "cbam"),      # was 'eca'
    (lambda n: attnlab.create_attention(n, 8), "sse", "se"),         # was 'scse'
    (attnlab.create_model, "resnet21", "resnet20"),                  # was 'resnet32'
    (lambda n: attnlab.create_attention(n, 8), "nonlocal", "non_local"),
])
def test_the_registries_suggest_the_name_meant(create, name, meant):
    with pytest.raises(ValueError, match=rf"unknown \w+( module)? '{name}'\. Did you mean '{meant}'\?"):
        create(name)


@pytest.mark.parametrize("args,meant", [
    (["--attention", "cmab"], "cbam"),
    (["--attention", "sse"], "se"),
    (["--model", "resnet21"], "resnet20"),
])
def test_the_command_line_suggests_the_name_meant(tmp_path, args, meant):
    res = subprocess.run([sys.executable, "-m", "attnlab.cli", "train", *args, "--out", str(tmp_path / "run")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr
    assert f"Did you mean {meant!r}?" in res.stderr
    assert "Traceback" not in res.stderr
