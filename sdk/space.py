"""The embedding space id (DESIGN.md contract 1).

A space id is the first 16 hex digits of a sha256 over the preprocessing settings (canonical
JSON) and every weight array of the encoders and the fusion tower (dtype, shape, bytes), in
order. Two artifacts can be searched against each other only when their space ids are equal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

import numpy as np

SPACE_ID_LENGTH = 16


def compute_space_id(weights: Iterable[np.ndarray], preprocess: dict[str, Any]) -> str:
    """Space id of a set of weights and the preprocessing config that feeds them."""
    digest = hashlib.sha256()
    digest.update(json.dumps(preprocess, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    for array in weights:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode("ascii"))
        digest.update(array.tobytes())
    return digest.hexdigest()[:SPACE_ID_LENGTH]
