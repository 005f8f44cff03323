"""evaluate(): integer-graph accuracy, the float/integer disagreement and the per-class figures."""

from __future__ import annotations

import numpy as np

from pbkit.trainer.data import CLASSES, load_sample
from pbkit.trainer.evaluate import evaluate
from tests.support import random_model


def test_a_class_the_split_lacks_has_no_accuracy_rather_than_zero():
    sample = load_sample().head(60)
    keep = sample.labels != CLASSES.index("bird")
    split = type(sample)(sample.images[keep], sample.labels[keep])
    result = evaluate(random_model(8), split)
    assert result["per_class_top1"]["bird"] is None
    confusion = np.array(result["confusion"])
    for c, name in enumerate(CLASSES):
        if name != "bird":
            assert result["per_class_top1"][name] == confusion[c, c] / confusion[c].sum()
    assert confusion.sum() == len(split) and result["images"] == len(split)
    assert result["top1"] == np.trace(confusion) / len(split)
