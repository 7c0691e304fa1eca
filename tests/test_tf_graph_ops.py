"""Every converted TensorFlow op against TensorFlow: one small GraphDef per op (variant),
written by TensorFlow from a `tf.function` with seeded constants, read without TensorFlow,
run by both sides on zeros and a seeded random batch (batch 2: the batch stays dynamic)."""

from __future__ import annotations

import pytest
from tests.tf_graph_models import cached, compare_with_tensorflow
from tests.tf_op_models import CASES, write_graph

pytest.importorskip("tensorflow")


@pytest.fixture(scope="session")
def op_graphs():
    def build(folder):
        for case in CASES:
            write_graph(case, folder / f"{case.name}.pb")

    return cached("ops-4", build)  # -4: raw op forms, logic, inf and nan tests


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_op_matches_tensorflow(case, op_graphs):
    report = compare_with_tensorflow(op_graphs / f"{case.name}.pb", case.low, case.high,
                                     zeros=case.zeros)
    assert report.passed, report.table()


def test_every_registered_tensorflow_converter_has_a_real_name():
    from tf2torch.conversion.graph.converters import default_registry

    keys = default_registry().keys("tensorflow")
    assert len(keys) > 100
    for key in keys:
        assert default_registry().get(key).__name__.startswith("convert_"), key
