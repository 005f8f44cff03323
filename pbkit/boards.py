"""The boards pbkit targets: one table, read by export, build, emulate and bench."""

from __future__ import annotations

from dataclasses import dataclass

#: How firmware and host encode the counter kind (PB_COUNTER_KIND, HELLO's counter byte; pb_board.h's
#: PB_COUNTER_CYCLES and PB_COUNTER_INSTRUCTIONS, tests/test_boards.py holds them equal).
COUNTER_CODES = {"cycles": 0, "instructions": 1}
#: The host link's UART rate on every board (pb_board.h's PB_UART_BAUD, platformio.ini's monitor_speed).
UART_BAUD = 115200


def ticks_to_counter(ticks: int, counter: str, clock_hz: int, icount_shift: int) -> float:
    """Counter ticks -> instructions (QEMU) or cycles (hardware).

    Under QEMU's -icount each instruction advances virtual time by 2**shift ns, and SysTick
    runs at clock_hz of that virtual time.
    """
    if counter == "cycles":
        return float(ticks)
    return ticks * 1e9 / (clock_hz * 2**icount_shift)


@dataclass(frozen=True)
class Board:
    """A target board: memory budget, core and how its counter is read."""

    name: str
    mcu: str
    cpu: str  # gcc -mcpu value
    flash_bytes: int
    ram_bytes: int  # RAM the linker script gives to data, bss, stack and heap
    clock_hz: int  # the clock SysTick/DWT count at
    counter: str  # "instructions" (QEMU -icount + SysTick) or "cycles" (DWT CYCCNT)
    qemu_machine: str | None = None  # set for boards pbkit can emulate
    icount_shift: int = 0  # QEMU -icount shift: one instruction = 2**shift ns of virtual time
    support_file: str | None = None  # firmware/src/boards/NAME.c; None: the board's own name
    # Flash wait states of a data read at clock_hz (RM0090: 5 on an STM32F405 at 168 MHz; the Nucleo boards run
    # from the 16 or 64 MHz HSI, 0 there; the MPS2 image sits in zero-wait SSRAM): what a read of a constant
    # table can cost beyond the zero-wait-state cycle estimate when the flash accelerator misses.
    flash_wait_states: int = 0

    @property
    def support_source(self) -> str:
        return f"{self.support_file or self.name}.c"

    @property
    def emulated(self) -> bool:
        return self.qemu_machine is not None

    def ticks_to_counter(self, ticks: int) -> float:
        return ticks_to_counter(ticks, self.counter, self.clock_hz, self.icount_shift)


BOARDS: dict[str, Board] = {
    b.name: b
    for b in [
        Board("netduinoplus2", "STM32F405RG", "cortex-m4", 1024 * 1024, 128 * 1024, 168_000_000,
              "instructions", qemu_machine="netduinoplus2", icount_shift=3, flash_wait_states=5),
        # MPS2 FPGA images as QEMU models them: 4 MB SSRAM1 at 0 holds the image ("flash"), 4 MB
        # SSRAM2/3 at 0x20000000 is the RAM; SysTick runs on the 25 MHz SYSCLK. Shift 6 makes one
        # instruction 64 ns, longer than one 40 ns tick, so the count resolves single instructions.
        Board("mps2-an386", "MPS2 AN386", "cortex-m4", 4096 * 1024, 4096 * 1024, 25_000_000,
              "instructions", qemu_machine="mps2-an386", icount_shift=6, support_file="mps2"),
        Board("mps2-an500", "MPS2 AN500", "cortex-m7", 4096 * 1024, 4096 * 1024, 25_000_000,
              "instructions", qemu_machine="mps2-an500", icount_shift=6, support_file="mps2"),
        Board("nucleo_f446re", "STM32F446RE", "cortex-m4", 512 * 1024, 128 * 1024, 16_000_000, "cycles"),
        Board("nucleo_f746zg", "STM32F746ZG", "cortex-m7", 1024 * 1024, 320 * 1024, 16_000_000, "cycles"),
        Board("nucleo_h743zi", "STM32H743ZI", "cortex-m7", 2048 * 1024, 512 * 1024, 64_000_000, "cycles"),
    ]
}

DEFAULT_BOARD = "netduinoplus2"


class UnknownBoardError(ValueError):
    pass


def get_board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise UnknownBoardError(f"unknown board {name!r}; known: {', '.join(BOARDS)}") from None
