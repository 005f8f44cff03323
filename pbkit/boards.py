"""The boards pbkit targets: one table, read by export, build, emulate and bench."""

from __future__ import annotations

from dataclasses import dataclass

#: How firmware and host encode the counter kind (PB_COUNTER_KIND, HELLO's counter byte).
COUNTER_CODES = {"cycles": 0, "instructions": 1}


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

    @property
    def emulated(self) -> bool:
        return self.qemu_machine is not None

    def ticks_to_counter(self, ticks: int) -> float:
        return ticks_to_counter(ticks, self.counter, self.clock_hz, self.icount_shift)


BOARDS: dict[str, Board] = {
    b.name: b
    for b in [
        Board("netduinoplus2", "STM32F405RG", "cortex-m4", 1024 * 1024, 128 * 1024, 168_000_000,
              "instructions", qemu_machine="netduinoplus2", icount_shift=3),
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
