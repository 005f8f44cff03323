"""What the int8 yardstick tests need, with a skip that names what is missing and how to get it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from pbkit.host.int8 import DEFAULT_CMSIS_NN, DEFAULT_TFLITE, Int8SetupError, cmsis_nn_root, tflite_path

INSTALL = "pip install -e '.[yardstick]' (make test installs it)"


def require_packages(*names: str) -> None:
    missing = [n for n in names if importlib.util.find_spec(n) is None]
    if missing:
        pytest.skip(f"optional packages {', '.join(missing)} not installed: {INSTALL}")


def model_path() -> Path:
    try:
        return tflite_path()
    except Int8SetupError as e:
        pytest.skip(f"MLPerf Tiny model missing ({DEFAULT_TFLITE}): {e}")


def cmsis_nn() -> Path:
    try:
        return cmsis_nn_root()
    except Int8SetupError as e:
        pytest.skip(f"CMSIS-NN missing ({DEFAULT_CMSIS_NN}): {e}")
