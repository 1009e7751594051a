"""Paths a user can influence stay inside the data root."""

import pytest

import datalib
from datalib.paths import inside_root


def test_a_folder_inside_the_root_resolves(tmp_path):
    (tmp_path / "pets" / "train").mkdir(parents=True)
    assert inside_root(tmp_path, "pets") == (tmp_path / "pets").resolve()
    assert inside_root(tmp_path, "pets/train") == (tmp_path / "pets" / "train").resolve()


@pytest.mark.parametrize(
    ("relative", "message"),
    [
        ("../secrets", "climbs out with '..'"),
        ("pets/../../etc", "climbs out with '..'"),
        ("/etc/passwd", "is an absolute path"),
        ("~/data", "is an absolute path"),
        ("pets\x00.png", "NUL byte"),
        ("", "is empty"),
    ],
)
def test_escapes_are_refused(tmp_path, relative, message):
    with pytest.raises(datalib.InvalidRequest, match=message):
        inside_root(tmp_path, relative)


def test_a_link_that_leads_outside_is_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "innocent").symlink_to(outside)
    with pytest.raises(datalib.InvalidRequest, match="through a symbolic link"):
        inside_root(root, "innocent")
    (root / "inner").mkdir()
    (root / "alias").symlink_to(root / "inner")
    assert inside_root(root, "alias") == (root / "inner").resolve()
