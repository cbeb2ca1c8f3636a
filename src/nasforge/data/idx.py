"""A numpy reader for the IDX format of the official MNIST and Fashion-MNIST files.

Parsed by hand (four lines of header logic) so the project needs no dataset package and can say
precisely what is wrong with a damaged file instead of failing deep inside a third-party loader.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from nasforge.errors import DataFormatError

#: IDX type byte -> big-endian numpy dtype (from the format's specification).
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

#: Magic numbers of the two kinds of file MNIST ships: unsigned bytes in 3 or 1 dimensions.
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

_GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic (whatever its suffix)."""
    path = Path(path)
    raw = path.read_bytes()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DataFormatError(
            f"{path}: damaged gzip file ({err}); expected a complete .gz"
        ) from err


def read_idx(path: str | os.PathLike[str], magic: int | None = None) -> np.ndarray:
    """Decode one IDX file (optionally gzipped) into a writable native-endian array.

    ``magic`` (e.g. `IMAGES_MAGIC`) rejects a file of the wrong kind, such as a label file
    given where images are expected.
    """
    path = Path(path)
    raw = read_bytes(path)
    found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    wanted = f"0x{magic:08x}" if magic is not None else "0x0000TTDD, TT a type in 08-0e"
    if found is None or raw[0] or raw[1] or raw[2] not in _DTYPES:
        shown = f"0x{found:08x}" if found is not None else f"{len(raw)} bytes"
        raise DataFormatError(f"{path}: not an IDX file (magic number {shown}; expected {wanted})")
    if magic is not None and found != magic:
        raise DataFormatError(f"{path}: IDX magic number 0x{found:08x}; expected {wanted}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFormatError(f"{path}: IDX header truncated ({len(raw)} bytes, needs {header})")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = header + math.prod(dims) * dtype.itemsize
    if len(raw) != expected:
        raise DataFormatError(
            f"{path}: {len(raw)} bytes, expected {expected} for an IDX array of shape {dims}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))
