"""PopBin's binary layers in the Cortex-M build contain no multiply; the baseline's requant conv does."""

import pytest

from pbkit.host.disasm import (
    BINARY_LAYER_FUNCTIONS,
    binary_layer_functions,
    count_multiplies,
    image_path,
    multiplies,
    scan,
)


def test_binary_layers_have_no_multiply(real_model_firmware):
    _, built = real_model_firmware
    found = scan(built.elf)
    assert set(found) == set(BINARY_LAYER_FUNCTIONS)
    assert found == {name: [] for name in BINARY_LAYER_FUNCTIONS}


def test_scan_does_see_the_stem_and_head_multiplies(real_model_firmware):
    _, built = real_model_firmware
    found = scan(built.elf, ("pb_stem_conv_thermometer", "pb_head_sumpool_fc"))
    assert found["pb_stem_conv_thermometer"] and found["pb_head_sumpool_fc"]


def test_baseline_requant_conv_multiplies_and_the_scan_sees_it(baseline_model_firmware):
    _, built = baseline_model_firmware
    functions = binary_layer_functions(["requant"])
    assert "pb_binconv3x3_requant" in functions and "pb_binconv3x3_popbin" not in functions
    counts = count_multiplies(built.elf, functions)
    assert counts["pb_binconv3x3_requant"] >= 1  # p * M + B: one multiply(-accumulate) per output element
    assert counts["pb_rsign_pack"] == 0 and counts["pb_sumpool2x2_dup"] == 0


def test_popbin_counts_are_zero(real_model_firmware):
    _, built = real_model_firmware
    assert count_multiplies(built.elf) == {name: 0 for name in BINARY_LAYER_FUNCTIONS}


@pytest.mark.parametrize("kernel", ["fast", "reference", "tables", "slices"])
def test_ternary_binary_layers_have_no_multiply(model_firmware, kernel):
    """Three levels, two compares: the ternary conv (lane pairs, the walk, the popcount tables and their assembly)
    multiplies nothing."""
    from fw_support import EMULATED_BOARD

    _, built = model_firmware("ternary", kernel, EMULATED_BOARD)
    functions = binary_layer_functions(["ternary"])
    assert "pb_binconv3x3_ternary" in functions
    assert count_multiplies(built.elf, functions) == {name: 0 for name in functions}


TABLES = {"popbin_table", "ternary_table"}
SLICES = {"popbin_slice", "ternary_slice"}


@pytest.mark.parametrize(("kernel", "linked"), [("fast", set()), ("tables", TABLES), ("slices", TABLES | SLICES)])
def test_a_build_links_only_the_table_paths_its_export_uses(model_firmware, kernel, linked):
    """The table and slice paths cost flash (the slice code 18 KB): a build without those tables has none of it."""
    from fw_support import EMULATED_BOARD

    from pbkit.host.disasm import disassemble

    _, built = model_firmware("ternary", kernel, EMULATED_BOARD)
    functions = set(disassemble(built.elf))
    assert (TABLES | SLICES) & functions == linked


def test_binary_layer_functions_follow_the_block_kinds():
    assert binary_layer_functions(["popbin", "popbin"]) == BINARY_LAYER_FUNCTIONS
    assert binary_layer_functions(["popbin", "requant"]) == (
        "pb_rsign_pack", "pb_binconv3x3_popbin", "pb_sumpool2x2_dup", "pb_binconv3x3_requant")
    with pytest.raises(ValueError, match="unknown block kind"):
        binary_layer_functions(["float"])


def test_multiply_pattern():
    lines = ["8000: mul\tr0, r1", "8002:\tmla\tr3, r1, r2, r3", "8004:\tsmlabb\tr0, r1, r2, r3",
             "8006:\tumull\tr0, r1, r2, r3", "8008:\tadds\tr0, #1", "800a:\tmuls\tr0, r1, r0", "800c:\tlsls\tr0, #2"]
    assert [line.split("\t")[1] for line in multiplies(lines)] == ["mla", "smlabb", "umull", "muls"]


@pytest.mark.parametrize("kernel", ["fast", "reference"])
def test_multiply_free_model_has_no_multiply_on_the_whole_image_path(model_firmware, kernel):
    """--stem bitplanes --head shift: every function pb_model_run reaches (libgcc's popcount in the reference
    build included) holds no multiply instruction; the one indirect call is the layer hook (NULL here)."""
    from fw_support import EMULATED_BOARD

    _, built = model_firmware("multfree", kernel, EMULATED_BOARD)
    found, indirect = image_path(built.elf)
    assert {"pb_network_run", "pb_stem_bitplanes", "pb_head_sumpool_shift", "pb_binconv3x3_ternary"} <= set(found)
    assert not {"pb_stem_conv_thermometer", "pb_head_sumpool_fc", "pb_binconv3x3_requant"} & set(found)
    assert found == {name: [] for name in found}
    assert set(indirect) == {"pb_network_run"}


def test_image_path_scan_follows_calls_to_the_int8_multiplies(real_model_firmware):
    """The same scan of an int8-stem model finds the stem's and the head's multiplies through the calls."""
    _, built = real_model_firmware
    found, _ = image_path(built.elf)
    assert found["pb_stem_conv_thermometer"] and found["pb_head_sumpool_fc"]
    assert found["pb_network_run"] == []  # the block table is walked by pointer, not indexed with a multiply
