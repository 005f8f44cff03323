"""Memory plan of an exported model: buffers, integer widths, flash and RAM, checked against a board.

One residual buffer, updated in place through the whole network (stride-2 units pool it in
place), one bit buffer reused by every binary conv, and a small head scratch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pbkit.boards import Board
from pbkit.ir import BlockIR, IntegerModel

from .kernel import Kernel
from .pack import (
    LANE_PAIR_MAX_CHANNELS,
    fast_words_per_channel,
    lane_pair_words_per_pair,
    stem_fast_words_per_channel,
    table_entry_words,
    table_threshold_words,
    takes_slice_table,
    takes_table,
    words_for,
)

# Firmware outside the model (startup, UART, protocol, frame buffers, stack); measured builds
# of the stub firmware stay below these, and `pbkit build` reports the real figures.
CODE_RESERVE_BYTES = 24 * 1024
RAM_RESERVE_BYTES = 16 * 1024


def block_takes_table(blk: BlockIR, kernel: Kernel) -> bool:
    """Whether the block's conv reads a table instead of weights: --kernel tables (pb_binconv_table.h) and slices
    (also pb_binconv_slice.h)."""
    return (kernel.tables and blk.kind in ("popbin", "ternary")
            and takes_table(blk.in_channels, blk.out_channels, kernel.slices))


def block_takes_slice_table(blk: BlockIR, kernel: Kernel) -> bool:
    """Whether the block's table is a slice table (--kernel slices, pb_binconv_slice.h), not a nibble table."""
    return (kernel.slices and blk.kind in ("popbin", "ternary")
            and takes_slice_table(blk.in_channels, blk.out_channels))


class ModelTooLargeError(ValueError):
    """The model does not fit the chosen board; the message carries the numbers."""


@dataclass
class MemoryPlan:
    kernel: Kernel  # the layout the sizes are for
    residual_bits: int  # 16 or 32
    residual_elements: int
    bit_buffer_words: int
    head_scratch_words: int
    weight_bytes: int  # binary weights, packed
    threshold_bytes: int  # RSign thresholds, and popbin blocks' popcount thresholds
    requant_bytes: int  # requant blocks' multipliers and biases (the baseline; 0 for popbin models)
    stem_bytes: int
    head_bytes: int
    max_abs_residual: int

    @property
    def model_flash_bytes(self) -> int:
        return self.weight_bytes + self.threshold_bytes + self.requant_bytes + self.stem_bytes + self.head_bytes

    @property
    def model_ram_bytes(self) -> int:
        return (self.residual_elements * self.residual_bits // 8 + 4 * self.bit_buffer_words
                + 4 * self.head_scratch_words)

    def to_dict(self) -> dict:
        return {**asdict(self), "kernel": self.kernel.value, "model_flash_bytes": self.model_flash_bytes,
                "model_ram_bytes": self.model_ram_bytes}


def plan_memory(ir: IntegerModel, kernel: Kernel = Kernel.REFERENCE) -> MemoryPlan:
    """Buffers and flash of `ir` exported for `kernel`; the fast kernel's tables have their own
    layout (codegen/pack.py): derived weight words, and thresholds in int16 pairs. An export computes
    it once and hands it to what needs it (render, check_fits, the memory report)."""
    _, h, w = ir.input_shape
    c = ir.stem.weight.shape[0]
    residual = h * w * c
    bit_words = 0
    weight_bytes = threshold_bytes = requant_bytes = 0
    bound = max(ir.residual_bound())
    # Pool sums are formed in int32 and stored back: the stored values are what the bound covers.
    residual_bits = 16 if bound <= 32767 else 32
    fast = kernel.fast
    for blk in ir.blocks:
        bit_words = max(bit_words, (h + 2) * (w + 2) * words_for(blk.in_channels))
        if blk.stride == 2:
            h, w = h // 2, w // 2
        residual = max(residual, h * w * blk.out_channels)
        table = block_takes_table(blk, kernel)
        if table:  # nibble or slice tables (pb_binconv_table.h, pb_binconv_slice.h)
            weight_bytes += 4 * table_entry_words(blk.in_channels, blk.out_channels)
        elif fast and blk.kind in ("popbin", "ternary") and blk.in_channels <= LANE_PAIR_MAX_CHANNELS:  # lane pairs
            weight_bytes += 4 * (lane_pair_words_per_pair(blk.in_channels) - 1) * ((blk.out_channels + 1) // 2)
        else:
            weight_bytes += 4 * blk.out_channels * (fast_words_per_channel(blk.in_channels) if fast
                                                    else 9 * words_for(blk.in_channels))
        threshold_bytes += 4 * ((blk.in_channels + 1) // 2 if fast and residual_bits == 16 else blk.in_channels)
        if blk.kind == "requant":  # int32 multiplier + bias per output channel, no popcount threshold
            requant_bytes += 8 * blk.out_channels
        elif table:  # in the table: int16 pairs or threshold planes
            threshold_bytes += 4 * table_threshold_words(blk.in_channels, blk.out_channels, blk.kind == "ternary")
        else:  # fast: two int16 thresholds a word, in the weight stream; ternary: two tables
            tables = 2 if blk.kind == "ternary" else 1
            threshold_bytes += tables * 4 * ((blk.out_channels + 1) // 2 if fast else blk.out_channels)
    if ir.stem.kind == "bitplanes":  # the stem's planes borrow the bit buffer: one word a pixel, with the border
        bit_words = max(bit_words, (ir.input_shape[1] + 2) * (ir.input_shape[2] + 2))
    return MemoryPlan(
        kernel=kernel, residual_bits=residual_bits, residual_elements=residual, bit_buffer_words=bit_words,
        head_scratch_words=ir.head.weight.shape[1], weight_bytes=weight_bytes,
        threshold_bytes=threshold_bytes, requant_bytes=requant_bytes,
        stem_bytes=_stem_bytes(ir, fast),
        head_bytes=ir.head.weight.size + 4 * ir.head.bias.size, max_abs_residual=bound,
    )


def _stem_bytes(ir: IntegerModel, fast: bool) -> int:
    """The stem's tables: int8 weights and thresholds, the fast int8 stem's packed words, or the bit-plane stem's
    (reference: thermometer thresholds, 9 words and the thresholds a channel; fast: 256 uint16 masks, 12 words
    and N + 1 int8 levels a channel)."""
    c, levels = ir.stem.weight.shape[0], ir.stem.levels
    if ir.stem.kind == "bitplanes":
        if fast:
            return 2 * 256 + c * (4 * 12 + 9 * ir.stem.weight.shape[1] + 1)
        return len(ir.stem.input_thresholds) + 4 * c * (9 + levels)
    return 4 * c * stem_fast_words_per_channel(levels) if fast else ir.stem.weight.size + 4 * ir.stem.thresholds.size


def check_fits(plan: MemoryPlan, board: Board) -> None:
    flash = plan.model_flash_bytes + CODE_RESERVE_BYTES
    ram = plan.model_ram_bytes + RAM_RESERVE_BYTES
    problems = []
    if flash > board.flash_bytes:
        problems.append(f"flash {flash:,} B (model {plan.model_flash_bytes:,} + firmware "
                        f"{CODE_RESERVE_BYTES:,}) > {board.flash_bytes:,} B")
    if ram > board.ram_bytes:
        problems.append(f"RAM {ram:,} B (model buffers {plan.model_ram_bytes:,} + firmware "
                        f"{RAM_RESERVE_BYTES:,}) > {board.ram_bytes:,} B")
    if problems:
        raise ModelTooLargeError(f"model does not fit {board.name} ({board.mcu}): " + "; ".join(problems))
