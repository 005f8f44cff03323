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

    @classmethod
    def parse(cls, text: str) -> Kernel:
        """``"fast"`` -> Kernel.FAST; a ValueError that names the choices otherwise."""
        try:
            return cls(text)
        except ValueError:
            raise ValueError(f"unknown kernel {text!r}; choose one of {', '.join(k.value for k in cls)}") from None

    @property
    def fast(self) -> bool:
        """The fast kernels' layouts (PB_KERNEL_FAST 1): both FAST and TABLES."""
        return self is not Kernel.REFERENCE

    @property
    def tables(self) -> bool:
        return self is Kernel.TABLES

    def __str__(self) -> str:
        return self.value
