import pytest

from pbkit.codegen.ops import count_ops, model_layers, totals
from pbkit.trainer.fold import fold_model
from tests.support import random_model


def test_baseline_reactnet18_has_the_decks_557056_requantization_multiplies():
    total = totals(count_ops("reactnet18", 1.0, "baseline"))
    assert total["multiplies"] == 557_056 and total["shifts"] == 557_056


def test_popbin_hidden_layers_have_no_multiply_or_shift():
    layers = count_ops("reactnet18", 1.0, "popbin")
    total = totals(layers)
    assert total["hidden_multiplies"] == 0 and total["hidden_shifts"] == 0 and total["multiplies"] == 0
    assert total["stem_head_macs"] == 27 * 64 * 1024 + 512 * 10  # real MACs, shown apart
    assert len([lay for lay in layers if lay.kind == "binary"]) == 16


def test_per_layer_units_of_mul_follow_co_ho_wo():
    layers = count_ops("reactnet18", 1.0, "baseline")
    assert [lay.multiplies for lay in layers[:6]] == [65_536] * 5 + [32_768]


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown mode"):
        count_ops("reactnet18", 1.0, "nope")
    with pytest.raises(ValueError, match="not a whole number"):
        count_ops("reactnet18", 0.3, "popbin")


def test_ops_cli_json(capsys):
    import json

    from pbkit.cli import main

    assert main(["ops", "--model", "reactnet18", "--width", "1.0", "--mode", "baseline", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["multiplies"] == 557_056


@pytest.mark.parametrize("mode", ["popbin", "baseline"])
def test_model_layers_of_an_exported_model_are_count_ops_layers(mode):
    """What `pbkit profile` names the board's layers: count_ops's names, outputs and XNOR words."""
    ir = fold_model(random_model(8, mode=mode))
    from_ir = [(lay.name, lay.kind, lay.output, lay.xnor_words) for lay in model_layers(ir)]
    analytic = [(lay.name, lay.kind, lay.output, lay.xnor_words) for lay in count_ops("reactnet18", 0.125, mode)]
    assert from_ir == analytic
    assert from_ir[1] == ("stage1.unit1", "binary", "8x32x32", 32 * 32 * 8 * 9 * 1)


def test_model_layers_count_the_useful_xnor_bits():
    """The profile's metric counts bits, not words: 16 channels fill half a word, 40 fill 1.25."""
    for channels, first_words in ((16, 0.5), (40, 1.25)):
        layers = model_layers(fold_model(random_model(channels, seed=1)))
        first = layers[1]
        assert first.xnor_bits == 32 * 32 * channels * 9 * channels
        assert first.xnor_bits / 32 == 32 * 32 * channels * 9 * first_words
        assert all(lay.xnor_bits <= 32 * lay.xnor_words for lay in layers)


def test_multiply_free_options_count_no_multiply(capsys):
    import json

    from pbkit.cli import main

    total = totals(count_ops("reactnet18", 0.25, "popbin", stem="bitplanes", head="shift"))
    assert total["all_multiplies"] == 0 and total["stem_head_macs"] == 0
    assert totals(count_ops("reactnet18", 0.25, "popbin"))["all_multiplies"] == 27 * 16 * 1024 + 128 * 10
    assert main(["ops", "--width", "0.25", "--stem", "bitplanes", "--head", "shift", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["all_multiplies"] == 0
    with pytest.raises(ValueError, match="unknown stem"):
        count_ops("reactnet18", 0.25, "popbin", stem="float")
