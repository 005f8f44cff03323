"""pbkit/boards.py: the board facts the firmware shares are the table's (the C headers and PlatformIO agree).

The other board facts reach C only as -D flags made from the table (tests/test_build.py,
test_board_defines_come_from_boards_table); the linker scripts' memory sizes and the PlatformIO board
manifests are checked against it in tests/test_build.py and tests/test_pio.py.
"""

from __future__ import annotations

import configparser
import inspect

import pytest
from fw_support import c_defines

from pbkit.boards import BOARDS, COUNTER_CODES, UART_BAUD, UnknownBoardError, get_board, ticks_to_counter
from pbkit.host.link import BoardLink
from pbkit.paths import FIRMWARE_DIR

BOARD_H = FIRMWARE_DIR / "include" / "pb_board.h"


def test_counter_codes_and_uart_rate_are_the_firmwares():
    c = c_defines(BOARD_H)
    assert {kind: c[f"PB_COUNTER_{kind.upper()}"] for kind in COUNTER_CODES} == COUNTER_CODES
    assert {name for name in c if name.startswith("PB_COUNTER_")} == {f"PB_COUNTER_{k.upper()}" for k in COUNTER_CODES}
    assert c["PB_UART_BAUD"] == UART_BAUD
    assert inspect.signature(BoardLink).parameters["baudrate"].default == UART_BAUD
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(FIRMWARE_DIR / "platformio.ini")
    assert int(ini["env"]["monitor_speed"]) == UART_BAUD


def test_every_board_has_its_support_file_and_counter():
    for board in BOARDS.values():
        assert (FIRMWARE_DIR / "src" / "boards" / board.support_source).is_file(), board.name
        assert board.counter in COUNTER_CODES and board.emulated == (board.counter == "instructions")


def test_ticks_convert_by_the_icount_shift():
    assert ticks_to_counter(1000, "cycles", 16_000_000, 0) == 1000.0
    # netduinoplus2: 168 MHz SysTick, one instruction = 8 ns of virtual time -> 1.344 ticks per instruction.
    assert get_board("netduinoplus2").ticks_to_counter(1344) == pytest.approx(1000.0)
    with pytest.raises(UnknownBoardError, match="unknown board 'nope'; known: netduinoplus2"):
        get_board("nope")
