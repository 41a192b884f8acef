from __future__ import annotations

from contextlib import nullcontext as does_not_raise

import numpy as np
import pytest

from streamdeid.types import Detections, Region


@pytest.mark.parametrize(
    ("xyxy", "conf", "expectation"),
    [
        (np.zeros((0, 4)), np.zeros(0), does_not_raise()),
        (np.array([[1, 2, 3, 4]]), np.array([0.5]), does_not_raise()),
        (np.array([1, 2, 3, 4]), np.array([0.5]), pytest.raises(ValueError, match=r"\(n, 4\)")),
        (np.zeros((2, 4)), np.zeros(3), pytest.raises(ValueError, match=r"shape \(2,\)")),
        (np.array([[0, 0, np.nan, 1]]), np.ones(1), pytest.raises(ValueError, match="finite")),
        ([[1, 2, 3, 4]], np.ones(1), pytest.raises(ValueError, match=r"np\.ndarray")),
    ],
)
def test_detections_validate_on_construction(xyxy, conf, expectation) -> None:
    with expectation:
        d = Detections(xyxy, conf)
        assert d.xyxy.dtype == np.float32


@pytest.mark.parametrize(
    ("xyxy", "expectation"),
    [
        ((0, 0, 1, 1), does_not_raise()),
        ((5, 5, 5, 9), pytest.raises(ValueError, match="non-empty")),
        ((-1, 0, 3, 3), pytest.raises(ValueError, match="non-empty")),
    ],
)
def test_region_must_be_non_empty(xyxy, expectation) -> None:
    with expectation:
        Region(xyxy)
