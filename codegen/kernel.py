"""The kernel an export is for: the one option every layout decision of the exporter turns on."""

from __future__ import annotations

from enum import Enum


class Kernel(Enum):
    """Which firmware kernels the exported tables are laid out for (PB_KERNEL_FAST in pb_model_config.h).

    Parsed once where a user names it (``Kernel.parse``, the CLI's ``--kernel``) and passed on typed.
    """

    REFERENCE = "reference"  # plain C, the compiler's popcount: the contract the fast path is checked against
    FAST = "fast"  # the optimized kernels and their own table layouts (codegen/pack.py)
    # The fast kernels, and popcount tables for the windows of at most 32 channels (pb_binconv_table.h): fewer
    # instructions for 576 bytes of flash per output channel and 16 input channels of those layers.
    TABLES = "tables"
    # TABLES, and bit-sliced tables for the windows of whole words, more than one (64 to 224 channels), whose output
    # channels come in slices of 32 (pb_binconv_slice.h): fewer instructions again, for 704 bytes of flash per
    # input word, tap and slice (about 344 KB more for the shipped width-0.25 models; 1 MB boards, not 512 KB).
    SLICES = "slices"

    @classmethod
    def parse(cls, text: str) -> Kernel:
        """``"fast"`` -> Kernel.FAST; a ValueError that names the choices otherwise."""
        try:
            return cls(text)
        except ValueError:
            raise ValueError(f"unknown kernel {text!r}; choose one of {', '.join(k.value for k in cls)}") from None

    @property
    def fast(self) -> bool:
        """The fast kernels' layouts (PB_KERNEL_FAST 1): all but REFERENCE."""
        return self is not Kernel.REFERENCE

    @property
    def tables(self) -> bool:
        """Popcount tables for the windows of at most 32 channels: TABLES and SLICES."""
        return self in (Kernel.TABLES, Kernel.SLICES)

    @property
    def slices(self) -> bool:
        """Bit-sliced tables for the wider windows too: SLICES."""
        return self is Kernel.SLICES

    def __str__(self) -> str:
        return self.value
