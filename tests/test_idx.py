"""Bad IDX files are refused before their data is read, with a message that says why."""

import numpy as np
import pytest

from datalib import CorruptFile
from datalib.formats.idx import idx_shape
from tests.conftest import write_idx


def test_good_file_gives_its_shape(tmp_path):
    path = tmp_path / "images"
    write_idx(path, np.zeros((3, 28, 28), dtype=np.uint8))
    assert idx_shape(path, 3) == (3, 28, 28)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"<!DOCTYPE html><html><body>503 Service Unavailable</body></html>", "HTML page"),
        (b"\x00\x00\x08\x03\x00\x00", "shorter than its header"),
        (b"\x00\x00\x08\x01" + (12).to_bytes(4, "big") + bytes(12), "magic number"),
        (b"\x00\x00\x08\x03" + b"".join(n.to_bytes(4, "big") for n in (2, 28, 28)), "truncated"),
        (
            b"\x00\x00\x08\x03" + b"".join(n.to_bytes(4, "big") for n in (1, 2, 2)) + b"\x00" * 9,
            "longer than its header says",
        ),
    ],
)
def test_bad_file_is_refused_with_reason(tmp_path, content, message):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(CorruptFile, match=message) as error:
        idx_shape(path, 3)
    assert "download it again" in str(error.value)
