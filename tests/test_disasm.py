"""The binary layers of the Cortex-M build contain no multiply instruction."""

from pbkit.host.disasm import BINARY_LAYER_FUNCTIONS, multiplies, scan


def test_binary_layers_have_no_multiply(real_model_firmware):
    _, built = real_model_firmware
    found = scan(built.elf)
    assert set(found) == set(BINARY_LAYER_FUNCTIONS)
    assert found == {name: [] for name in BINARY_LAYER_FUNCTIONS}


def test_scan_does_see_the_stem_and_head_multiplies(real_model_firmware):
    _, built = real_model_firmware
    found = scan(built.elf, ("pb_stem_conv_thermometer", "pb_head_sumpool_fc"))
    assert found["pb_stem_conv_thermometer"] and found["pb_head_sumpool_fc"]


def test_multiply_pattern():
    lines = ["8000: mul\tr0, r1", "8002:\tmla\tr3, r1, r2, r3", "8004:\tsmlabb\tr0, r1, r2, r3",
             "8006:\tumull\tr0, r1, r2, r3", "8008:\tadds\tr0, #1", "800a:\tmuls\tr0, r1, r0", "800c:\tlsls\tr0, #2"]
    assert [line.split("\t")[1] for line in multiplies(lines)] == ["mla", "smlabb", "umull", "muls"]
