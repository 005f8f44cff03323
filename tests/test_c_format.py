"""scripts/c_format.py: every C file of firmware/ is as clang-format (pinned, .clang-format) writes it."""

from __future__ import annotations

from scripts import c_format


def test_firmware_c_is_clang_formatted():
    assert c_format.unformatted() == [], "run `make format`"


def test_every_firmware_folder_is_checked():
    files = c_format.c_files()
    assert files and all(name.startswith("firmware/") for name in files)
    assert any(name.startswith("firmware/kernels/") for name in files)  # the kernels too, since their merge
    assert c_format.FORMAT_PENDING == []


def test_the_style_file_sits_at_the_root():
    style = (c_format.ROOT / ".clang-format").read_text()
    assert "IndentWidth: 4" in style and "ColumnLimit: 120" in style
