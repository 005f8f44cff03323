"""scripts/c_format.py: every C file of firmware/ is as clang-format (pinned, .clang-format) writes it."""

from __future__ import annotations

from scripts import c_format


def test_firmware_c_is_clang_formatted():
    assert c_format.unformatted() == [], "run `make format`"


def test_the_pending_folders_are_one_list_and_left_out():
    files = c_format.c_files()
    assert files and all(name.startswith("firmware/") for name in files)
    assert not any(name.startswith("firmware/kernels/") for name in files)
    assert c_format.FORMAT_PENDING == ["firmware/kernels"]  # the lead empties this after the kernel merges


def test_the_style_file_sits_at_the_root():
    style = (c_format.ROOT / ".clang-format").read_text()
    assert "IndentWidth: 4" in style and "ColumnLimit: 120" in style
