"""Real handwritten digits as 28x28 images in [0, 1]: scikit-learn's digits and MNIST.

- ``load_sklearn_digits``: the 1,797 digits shipped inside scikit-learn (UCI optdigits
  test set, 8x8, values 0..16), always available. Each is divided by 16, upsampled
  bilinearly to MNIST's 20x20 digit box and centred in a 28x28 frame, as MNIST centres
  its 20x20 box (MNIST centres by centre of mass; here the box is centred).
- ``load_digit_split``: one split of either source. scikit-learn's digits have no
  official split: a stratified split (``SKLEARN_TEST_FRACTION`` of each class to the
  test set), shuffled, fixed by the seed. MNIST keeps its official split and order.
"""

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from snnlib.data.mnist import load_mnist

SKLEARN_TEST_FRACTION = 0.25
DIGIT_BOX = 20  # MNIST's size-normalised digit box inside its 28x28 frame
IMAGE_SIZE = 28


def load_sklearn_digits():
    """scikit-learn's 1,797 digits as ``(images float32 [N, 28, 28] in [0, 1], labels int64 [N])``."""
    digits = load_digits()
    small = torch.as_tensor(digits.images / 16.0, dtype=torch.float32)[:, None]
    box = torch.nn.functional.interpolate(small, size=(DIGIT_BOX, DIGIT_BOX), mode="bilinear",
                                          align_corners=False)[:, 0].numpy()
    images = np.zeros((len(box), IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    margin = (IMAGE_SIZE - DIGIT_BOX) // 2
    images[:, margin:margin + DIGIT_BOX, margin:margin + DIGIT_BOX] = np.clip(box, 0.0, 1.0)
    return images, digits.target.astype(np.int64)


def sklearn_split_indices(labels, split, seed):
    """Indices of ``split`` ("train" or "test") in a stratified, seeded, shuffled split of ``labels``."""
    train, test = train_test_split(np.arange(len(labels)), test_size=SKLEARN_TEST_FRACTION,
                                   stratify=labels, random_state=seed)
    return train if split == "train" else test


def load_digit_split(source, split, seed=0, data_dir="data", n_samples=None):
    """The first ``n_samples`` (default all) digits of a split: ``(images, labels, indices)``.

    Returns images float32 ``[N, 28, 28]`` in [0, 1], labels int64 ``[N]`` and each digit's
    index in its source (the full scikit-learn set, or the MNIST split). ``source`` is
    "sklearn" (split by ``seed`` and shuffled, so a prefix is a random sample of the split)
    or "mnist" (official split and order; needs ``python -m snnlib.data fetch mnist``).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if source == "sklearn":
        images, labels = load_sklearn_digits()
        index = sklearn_split_indices(labels, split, seed)
    elif source == "mnist":
        images, labels = load_mnist(split, data_dir)
        index = np.arange(len(labels))
    else:
        raise ValueError(f"source must be 'sklearn' or 'mnist', got {source!r}")
    if n_samples is not None:
        if int(n_samples) != n_samples or not 1 <= n_samples <= len(index):
            raise ValueError(f"n_samples must be an integer in [1, {len(index)}] for {source} {split}, "
                             f"got {n_samples!r}")
        index = index[: int(n_samples)]
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    return images[index].astype(np.float32) / scale, labels[index], index.astype(np.int64)
