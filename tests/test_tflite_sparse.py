"""Densifying sparse TFLite constants (CSR and block-sparse), without TensorFlow."""

from __future__ import annotations

import numpy as np

from tf2torch.sources.tflite.schema import Sparsity
from tf2torch.sources.tflite.sparse import densify


def test_csr_rows() -> None:
    sparsity = Sparsity((0, 1), (), ((2, (), ()), (0, (0, 1, 3), (1, 0, 2))))
    dense = densify(np.array([1.0, 2.0, 3.0]), sparsity, (2, 3))
    np.testing.assert_array_equal(dense, [[0, 1, 0], [2, 0, 3]])


def test_block_sparse_one_by_two_blocks() -> None:
    # 2×4 matrix in 1×2 blocks: row 0 keeps block 1, row 1 keeps block 0.
    sparsity = Sparsity((0, 1, 2), (1,),
                        ((2, (), ()), (0, (0, 1, 2), (1, 0)), (2, (), ())))
    dense = densify(np.array([1.0, 2.0, 3.0, 4.0]), sparsity, (2, 4))
    np.testing.assert_array_equal(dense, [[0, 0, 1, 2], [3, 4, 0, 0]])
