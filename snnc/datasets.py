"""Built-in data: scikit-learn's `load_digits` (1,797 real 8x8 digits, shipped offline).

The split is fixed so every figure in the README can be reproduced: stratified, 20% test,
`random_state=0`, giving 1,437 training and 360 test images. Pixels (0..16) are scaled to
[0, 1] and shaped `[N, 1, 8, 8]`; labels are int64 `[N]`.

`digits32` is the same split at the seeds' input shape, `[N, 3, 32, 32]`: every pixel
repeated over a 4x4 block (nearest-neighbour upsampling, so no value is invented) and the
grey image repeated over 3 channels. `SPLITS` names every built-in data set; `--data` and
`--check-data` accept these names.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from snnc.errors import SnncError

TEST_FRACTION = 0.2
SPLIT_SEED = 0
#: `digits32`: each 8x8 pixel becomes a square of UPSAMPLE x UPSAMPLE pixels, on RGB channels.
UPSAMPLE = 4
CHANNELS = 3


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


def digits32_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits split as 3x32x32 images (`[N, 3, 32, 32]` float32), for networks built for
    CIFAR-sized inputs: nearest-neighbour upsampling by 4, the grey level on all 3 channels."""
    x_train, y_train, x_test, y_test = digits_split()
    return _upsample(x_train), y_train, _upsample(x_test), y_test


def _upsample(x: np.ndarray) -> np.ndarray:
    x = x.repeat(UPSAMPLE, axis=2).repeat(UPSAMPLE, axis=3)
    return np.ascontiguousarray(np.broadcast_to(x, (x.shape[0], CHANNELS, *x.shape[2:])))


#: Built-in data sets by the name `--data` / `--check-data` take: name -> split function
#: returning `(x_train, y_train, x_test, y_test)`; snnc uses the test split.
SPLITS: dict[str, Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = {
    "digits": digits_split,
    "digits32": digits32_split,
}
#: The image shape `[C, H, W]` of each built-in data set (without loading it), so that an
#: input-shape error can name the set that fits.
SHAPES: dict[str, tuple[int, int, int]] = {
    "digits": (1, 8, 8),
    "digits32": (CHANNELS, 8 * UPSAMPLE, 8 * UPSAMPLE),
}
