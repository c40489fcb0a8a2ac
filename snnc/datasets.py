"""Built-in data: scikit-learn's `load_digits` (1,797 real 8x8 digits, shipped offline).

The split is fixed so every figure in the README can be reproduced: stratified, 20% test,
`random_state=0`, giving 1,437 training and 360 test images. Pixels (0..16) are scaled to
[0, 1] and shaped `[N, 1, 8, 8]`; labels are int64 `[N]`.
"""

from __future__ import annotations

import numpy as np

from snnc.errors import SnncError

TEST_FRACTION = 0.2
SPLIT_SEED = 0


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`(x_train, y_train, x_test, y_test)` of the documented digits split."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise SnncError("the digits data needs scikit-learn: pip install scikit-learn") from None
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=y)
    return x_train, y_train, x_test, y_test
