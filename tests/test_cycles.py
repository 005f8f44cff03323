"""Estimated cycles: the timing models on hand-picked instruction pairs, and the traced stream of a
real firmware ELF against what QEMU counts for the same image."""

import json
from collections import Counter

import pytest
from int8_support import require_packages

from pbkit.boards import get_board
from pbkit.codegen.ops import model_layers
from pbkit.host.cycles import M4_REFILL, EstimateError, block_costs, estimate_cycles
from pbkit.host.link import BoardLink
from pbkit.trainer.checkpoint import load_checkpoint
from pbkit.trainer.data import load_sample
from pbkit.trainer.fold import fold_model

# Thumb encodings, little-endian halfwords (each checked against capstone below).
LDR_R0_R1 = "0868"  # ldr r0, [r1]
LDR_R2_R3 = "1a68"  # ldr r2, [r3]
LDR_R1_R0 = "0168"  # ldr r1, [r0]   (address = the previous load's result)
ADDS_R1_4 = "0431"  # adds r1, #4
ADDS_R0_1 = "0130"  # adds r0, #1
STR_R0_R1 = "0860"  # str r0, [r1]
STR_R0_R1_R2 = "8850"  # str r0, [r1, r2]
PUSH_R4_LR = "10b5"  # push {r4, lr}
NOP = "00bf"
B_SELF = "fee7"  # b .


@pytest.fixture(autouse=True)
def _needs_libraries():
    require_packages("unicorn", "capstone", "elftools")


def _cost(*halfwords: str):
    code = bytes.fromhex("".join(halfwords))
    return block_costs({(0x1000, len(code)): code}, [(0x1000, "f")])[(0x1000, len(code))]


def test_encodings_are_what_they_say():
    import capstone

    md = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
    got = [f"{i.mnemonic} {i.op_str}" for i in md.disasm(bytes.fromhex(LDR_R0_R1 + LDR_R1_R0 + STR_R0_R1_R2), 0)]
    assert got == ["ldr r0, [r1]", "ldr r1, [r0]", "str r0, [r1, r2]"]


@pytest.mark.parametrize(("code", "m4", "m7"), [
    ((LDR_R0_R1, LDR_R2_R3), 3, 2),  # M4: the second load pipelines (1); M7: one memory op per cycle
    ((LDR_R0_R1, LDR_R1_R0), 4, 3),  # its address is the first load's result: no pipelining; M7 load-to-use
    ((ADDS_R1_4, LDR_R0_R1), 4, 2),  # address from the previous ALU result: +1 on the M4
    ((ADDS_R1_4, NOP), 2, 1),  # M7: independent ALU pair dual-issues
    ((LDR_R0_R1, ADDS_R0_1), 3, 3),  # M7: the add waits for the load
    ((STR_R0_R1,), 1, 1),  # immediate-offset store: 1
    ((STR_R0_R1_R2,), 2, 1),  # register-offset store: 2
    ((LDR_R0_R1, STR_R0_R1_R2), 3, 3),  # M4: a store after a load pipelines; M7: it stores the loaded value
    ((PUSH_R4_LR,), 3, 1),  # 1 + N on the M4, two registers a cycle on the M7
])
def test_block_timing(code, m4, m7):
    cost = _cost(*code)
    assert (cost.instructions, cost.m4, cost.m7) == (len(code), m4, m7)


def test_taken_branch_refills():
    from pbkit.host.cycles import _price

    costs = block_costs({(0x1000, 4): bytes.fromhex(NOP + B_SELF)}, [(0x1000, "f")])
    priced = _price(Counter({(0x1000, 4, True): 10}), costs, M4_REFILL)
    assert priced["instructions"] == 20
    assert priced["m4"] == 10 * (2 + M4_REFILL) and (priced["m4_p1"], priced["m4_p3"]) == (30, 50)
    assert priced["taken_branches"] == 10


def test_not_an_elf(tmp_path):
    bad = tmp_path / "firmware.elf"
    bad.write_bytes(b"not an elf")
    with pytest.raises(EstimateError, match="not an ELF"):
        estimate_cycles(bad, b"\0" * 3072, "cortex-m4")


def test_trace_matches_qemu_and_the_model(real_model_firmware, real_model_emulator):
    checkpoint, firmware = real_model_firmware
    image = load_sample().images[0].tobytes()
    result = estimate_cycles(firmware.elf, image, get_board(firmware.board).cpu, num_classes=10)
    with BoardLink(real_model_emulator.url, timeout=120.0) as link:  # a loaded machine slows QEMU
        link.wait_ready(timeout=120.0)
        out = link.infer(image)
    qemu = get_board(firmware.board).ticks_to_counter(out.ticks)
    layers = model_layers(fold_model(load_checkpoint(checkpoint)[0]))
    assert result["estimate"] is True
    assert result["logits"] == out.logits  # the same firmware computed the same image
    # The traced stream is QEMU's: only the hook calls (a few instructions per layer) differ.
    assert abs(result["instructions"] - qemu) <= 4 * len(layers) + 8
    assert len(result["layers"]) == len(layers)
    assert sum(r["instructions"] for r in result["layers"]) == result["instructions"]
    low, high = result["m4_range"]
    assert result["instructions"] < low <= result["estimated_cycles_m4"] <= high < 3 * result["instructions"]
    assert result["estimated_cycles_m7"] < result["estimated_cycles_m4"]
    # Every layer reads its constants (weights, thresholds) from flash; the counts are per layer and add up.
    assert all(r["flash_data_reads"] > 0 for r in result["layers"])
    assert sum(r["flash_data_reads"] for r in result["layers"]) == result["flash_data_reads"]


def test_profile_prints_estimated_cycles_beside_instructions(model_exports, tmp_path, capsys):
    from pbkit.cli import EXIT_OK, main
    from pbkit.host.cycles import format_profile_estimate

    checkpoint, _ = model_exports("popbin", "fast")
    code = main(["profile", "--board", "netduinoplus2", "--checkpoint", str(checkpoint), "--workdir",
                 str(tmp_path), "--json"])
    assert code == EXIT_OK
    result = json.loads(capsys.readouterr().out)
    est = result["estimated_cycles"]
    assert est["estimate"] is True and est["cpu"] == "cortex-m4"
    assert [r["name"] for r in est["layers"]] == [r["name"] for r in result["layers"]]
    assert abs(est["instructions"] - result["whole_image"]) <= 4 * len(result["layers"]) + 8
    text = format_profile_estimate(result)
    assert text.startswith("ESTIMATED cycles") and "not a measurement" in text
    assert est["flash_wait_states"] == 5
    assert est["flash_data_reads"] == sum(r["flash_data_reads"] for r in est["layers"]) > 0
    assert est["cortex_m4_all_flash_reads_wait"] == est["cortex_m4"] + 5 * est["flash_data_reads"]
    assert f"~{est['cortex_m4_all_flash_reads_wait']:,} (an upper bound for data reads)" in text
