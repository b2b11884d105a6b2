"""The size checks every module shares: group counts that divide C, odd kernel sizes."""

import pytest

from attnlab.attention import create_attention
from attnlab.attention._groups import check_groups, check_odd_kernel


@pytest.mark.parametrize("k", [1, 3, 7])
def test_an_odd_kernel_passes(k):
    assert check_odd_kernel(k, "ECA kernel_size") == k


@pytest.mark.parametrize("k", [0, -3, 4, 3.0, True, "3"])
def test_anything_else_is_one_line_naming_the_argument(k):
    with pytest.raises(ValueError, match=rf"^ECA kernel_size must be a positive odd int, got {k!r}$"):
        check_odd_kernel(k, "ECA kernel_size")


@pytest.mark.parametrize(("name", "what"), [("eca", "ECA kernel_size"), ("ceca", "CECA kernel_size"),
                                            ("triplet", "triplet kernel_size")])
def test_every_module_refuses_a_bool_kernel_alike(name, what):
    with pytest.raises(ValueError, match=f"{what} must be a positive odd int, got True"):
        create_attention(name, 16, kernel_size=True)


def test_groups_must_divide_the_channels():
    assert check_groups(12, 4, "groups") == 4
    with pytest.raises(ValueError, match="groups must be a positive int dividing channels=12, got 5"):
        check_groups(12, 5, "groups")
