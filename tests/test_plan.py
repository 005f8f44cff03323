import pytest

from pbkit.boards import get_board
from pbkit.codegen.plan import ModelTooLargeError, check_fits, plan_memory
from pbkit.trainer.fold import fold_model
from tests.support import random_model


def test_plan_sizes_for_width_16():
    plan = plan_memory(fold_model(random_model(16, seed=0)))
    assert plan.residual_elements == 16 * 32 * 32  # stage 1 is the largest; later stages reuse it
    assert plan.bit_buffer_words == 34 * 34 * 1
    # Cout x 9 x words(Cin) x 4 bytes per block: stage 1, then each stage's downsampling block + 3 more.
    per_block = [(16, 1)] * 4 + [(32, 1)] * 4 + [(64, 1)] + [(64, 2)] * 3 + [(128, 2)] + [(128, 4)] * 3
    assert plan.weight_bytes == sum(4 * 9 * out * words for out, words in per_block) == 87_552
    assert plan.residual_bits in (16, 32)


def test_a_model_too_big_for_the_board_is_refused_with_numbers():
    plan = plan_memory(fold_model(random_model(64, seed=0)))  # width 1.0: about 1.4 MB of weights
    with pytest.raises(ModelTooLargeError, match=r"does not fit netduinoplus2 .*flash [\d,]+ B"):
        check_fits(plan, get_board("netduinoplus2"))
    check_fits(plan, get_board("nucleo_h743zi"))  # 2 MB flash holds it
    for emulated in ("mps2-an386", "mps2-an500"):  # and the 4 MB / 4 MB MPS2 images QEMU runs
        check_fits(plan, get_board(emulated))
