import re

import pytest

from pbkit.codegen.kernel import Kernel
from pbkit.codegen.plan import plan_memory
from pbkit.codegen.render import build_context, render
from pbkit.trainer.fold import fold_model
from tests.golden import GOLDEN_DIR, tiny_render
from tests.support import random_model


def test_render_matches_the_checked_in_golden_export():
    """A codegen change shows up here; refresh deliberately with `make golden`."""
    for name, text in tiny_render().items():
        assert text == (GOLDEN_DIR / name).read_text(), f"{name} differs from tests/golden: run `make golden`"


def test_render_is_pure_and_names_its_files():
    ir = fold_model(random_model(8, seed=0))
    assert render(ir) == render(ir)
    assert set(render(ir)) == {"pb_model_config.h", "model_data.c"}


def test_kernel_choice_reaches_the_config_header():
    ir = fold_model(random_model(8, seed=0))
    assert "#define PB_KERNEL_FAST 0" in render(ir, kernel=Kernel.REFERENCE)["pb_model_config.h"]
    assert "#define PB_KERNEL_FAST 1" in render(ir, kernel=Kernel.FAST)["pb_model_config.h"]
    with pytest.raises(ValueError, match="unknown kernel 'turbo'; choose one of reference, fast"):
        Kernel.parse("turbo")
    assert Kernel.parse("fast") is Kernel.FAST and str(Kernel.REFERENCE) == "reference"


def test_the_config_links_the_table_and_slice_paths_only_where_the_export_has_them():
    ir = fold_model(random_model(8, seed=0))  # 8..64 channels: nibble-table layers, and slice layers of 64
    configs = {k: render(ir, kernel=k)["pb_model_config.h"] for k in (Kernel.FAST, Kernel.TABLES, Kernel.SLICES)}
    assert ["#define PB_MODEL_TABLES 1" in configs[k] for k in configs] == [False, True, True]
    assert ["#define PB_MODEL_SLICES 1" in configs[k] for k in configs] == [False, False, True]


def test_a_plan_is_made_once_and_must_match_the_kernel():
    ir = fold_model(random_model(8, seed=0))
    plan = plan_memory(ir, Kernel.FAST)
    assert render(ir, Kernel.FAST, plan=plan) == render(ir, Kernel.FAST)
    with pytest.raises(ValueError, match="plan for the fast kernel cannot render the reference one"):
        render(ir, Kernel.REFERENCE, plan=plan)


def test_a_per_channel_delta_model_is_refused_with_the_reason():
    ir = fold_model(random_model(8, seed=0, delta_per_channel=True))
    with pytest.raises(ValueError, match=r"one delta per output channel \(--delta-per-channel\).*does not export"):
        render(ir)


def test_strides_are_precomputed_for_the_multiply_free_kernels():
    ctx = build_context(fold_model(random_model(40, seed=0)))
    first_down = ctx["blocks"][4]
    assert first_down["stride"] == 2 and first_down["in_words"] == 2  # 40 channels -> 2 words
    assert first_down["padded_row_words"] == 34 * 2
    assert first_down["row_step_words"] == 2 * 34 * 2 and first_down["step_words"] == 4


@pytest.mark.parametrize("kernel", list(Kernel))
@pytest.mark.parametrize("mode", ["popbin", "baseline", "ternary"])
def test_plan_flash_is_the_rendered_tables(kernel, mode):
    """The plan's model flash is what the rendered constant tables hold, in either kernel's layout."""
    model = random_model(24, seed=2, branch_levels=3) if mode == "ternary" else random_model(24, seed=2, mode=mode)
    ir = fold_model(model)
    text = render(ir, kernel=kernel)["model_data.c"]
    sizes = {"int8_t": 1, "int32_t": 4, "uint32_t": 4}
    tables = re.findall(r"static const (u?int(?:8|32)_t) (\w+)\[(\d+)\]", text)
    assert sum(sizes[t] * int(n) for t, _, n in tables) == plan_memory(ir, kernel).model_flash_bytes
    names = {name for _, name, _ in tables}
    reference = kernel is Kernel.REFERENCE
    assert any(name.startswith("popcount_threshold_") for name in names) == (mode != "baseline" and reference)
    assert any(name.startswith("zero_threshold_") for name in names) == (mode == "ternary" and reference)
    assert ("PB_MODEL_TERNARY" in render(ir, kernel=kernel)["pb_model_config.h"]) == (mode == "ternary")


def test_multiply_free_model_names_its_kernels_in_the_config():
    files = render(fold_model(random_model(8, seed=2, stem="bitplanes", head="shift")))
    config, data = files["pb_model_config.h"], files["model_data.c"]
    for macro in ("PB_MODEL_STEM_BITPLANES 1", "PB_MODEL_HEAD_SHIFT 1", "PB_MODEL_REQUANT 0"):
        assert f"#define {macro}" in config
    assert ".bitstem = {" in data and ".planes = 10, .fan_in = 270" in data and "stem_weight" not in data
    default = render(fold_model(random_model(8, seed=2)))["pb_model_config.h"]
    assert "BITPLANES" not in default and "HEAD_SHIFT" not in default and "PB_MODEL_REQUANT" not in default
