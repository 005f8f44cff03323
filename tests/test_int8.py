"""The int8 yardstick end to end: the MLPerf Tiny ResNet-8 from its .tflite through CMSIS-NN, on the
host and on the emulated STM32F405, bit for bit what the LiteRT interpreter computes."""

from pathlib import Path

import numpy as np
import pytest
from int8_support import cmsis_nn, model_path, require_packages

from pbkit.boards import get_board
from pbkit.host.emulator import Emulator
from pbkit.host.host_c import run_host
from pbkit.host.int8 import (
    CMSIS_NN_ENV,
    Int8SetupError,
    build_int8_firmware,
    build_int8_host,
    cmsis_nn_root,
    export_int8,
    litert_run,
    tflite_path,
    to_model_input,
)
from pbkit.host.link import BoardLink
from pbkit.trainer.data import load_sample

IMAGES = 6


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    require_packages("tflite", "ai_edge_litert")
    model, root = model_path(), cmsis_nn()
    out = tmp_path_factory.mktemp("int8")
    net = export_int8(model, out / "model")
    images = load_sample().images[:IMAGES]
    return {"model": model, "cmsis_nn": root, "net": net, "dir": out, "images": images,
            "litert": litert_run(model, images, "reference")}


def test_missing_cmsis_nn_and_model_say_where(tmp_path, monkeypatch):
    with pytest.raises(Int8SetupError, match=f"--cmsis-nn DIR or set {CMSIS_NN_ENV}"):
        cmsis_nn_root(tmp_path)
    monkeypatch.setenv(CMSIS_NN_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(Int8SetupError, match="nowhere"):
        cmsis_nn_root()
    with pytest.raises(Int8SetupError, match="pretrainedResnet_quant.tflite"):
        tflite_path(tmp_path / "model.tflite")


def test_model_input_is_pixel_minus_128_hwc():
    images = np.arange(2 * 3 * 2 * 2, dtype=np.uint8).reshape(2, 3, 2, 2) * 10
    x = to_model_input(images)
    assert x.shape == (2, 2, 2, 3) and x.dtype == np.int8
    assert x[1, 0, 1, 2] == int(images[1, 2, 0, 1]) - 128


def test_host_build_equals_litert_bit_for_bit(setup):
    exe = build_int8_host(setup["dir"] / "model", setup["cmsis_nn"], setup["dir"] / "host" / "int8")
    host = run_host(exe, setup["images"], setup["net"].num_classes)
    ref = setup["litert"]
    assert (host.logits == ref.logits).all()  # the softmax's int8 input, every value
    assert (host.classes == ref.classes).all()


def test_firmware_in_qemu_equals_litert(setup):
    board = "netduinoplus2"
    result = build_int8_firmware(setup["dir"] / "model", board, setup["dir"] / "fw", setup["cmsis_nn"])
    assert result.flash_bytes < result.flash_total and result.ram_bytes < result.ram_total
    ref = setup["litert"]
    with Emulator(result.elf, board) as emu, BoardLink(emu.url, timeout=60.0) as link:
        info = link.wait_ready(timeout=60.0)  # a late reply to the emulator's own HELLO is not ours
        assert info.model_sha256.hex() == setup["net"].sha256
        assert info.input_shape == (3, 32, 32) and info.num_classes == 10
        counts = []
        for i, image in enumerate(setup["images"][:3]):
            out = link.infer(image.tobytes())
            assert out.class_index == ref.classes[i]
            assert out.logits == ref.logits[i].tolist()
            counts.append(get_board(board).ticks_to_counter(out.ticks))
        profile = link.profile(setup["images"][0].tobytes())
    assert len(profile.layer_ticks) == len(setup["net"].layers)
    layers = sum(get_board(board).ticks_to_counter(t) for t in profile.layer_ticks)
    # The layers add up to INFER's count, up to the SysTick wrap interrupts and hook calls (10 ppm).
    assert abs(layers - counts[0]) < 1e-5 * counts[0]
    # CMSIS-NN's SMLAD kernels: a few instructions per multiply-accumulate, not tens.
    assert counts[0] < 4 * setup["net"].macs


def test_litert_default_resolver_runs(setup):
    default = litert_run(setup["model"], setup["images"], "default")
    assert default.logits is None and default.outputs.shape == (IMAGES, 10)
    # XNNPACK requantizes in float: its classes may differ from the reference on a rare image, not on most.
    assert (default.classes == setup["litert"].classes).mean() >= 0.5


def test_unknown_resolver(setup):
    with pytest.raises(ValueError, match="unknown resolver"):
        litert_run(Path(setup["model"]), setup["images"][:1], "fast")
