"""`pbkit profile`: where a board spends one image, layer by layer.

The firmware times each layer itself (PROFILE, docs/protocol.md): its layer hook reads the
counter (SysTick under QEMU -icount, DWT CYCCNT on hardware) as each layer ends. The host
names the layers from the checkpoint's integer model and converts ticks to instructions or
cycles. It also cross-checks: the board must run the checkpoint's model, PROFILE's logits
are compared with PyTorch eval's, and an INFER of the same image gives the whole-image
count that the layers should add up to.
"""

from __future__ import annotations

import statistics

import numpy as np

from pbkit.codegen.ops import ModelLayer, model_layers
from pbkit.ir import IntegerModel

from .bench import Expected, ModelMismatchError, check_board, counter_value
from .link import PROFILE_SINCE_VERSION, BoardInfo, BoardLink, LinkError


class ProfileUnsupportedError(LinkError):
    """The board's firmware predates PROFILE (protocol version 1)."""


def profile_board(url: str, ir: IntegerModel, expected: Expected, images: np.ndarray, timeout: float = 60.0) -> dict:
    """PROFILE, then INFER, each image on the board at ``url``; returns per-layer medians (see
    :func:`summarize_profile`). ``ir`` is the checkpoint's integer model (it names the layers),
    ``expected`` PyTorch eval's answers for ``images`` (pbkit.expected).

    Raises ModelMismatchError when the board runs another model (or times other layers than the
    checkpoint has), ProfileUnsupportedError when its firmware has no PROFILE.
    """
    layers = model_layers(ir)
    counts: list[list[float]] = []  # [image][layer]
    whole: list[float] = []
    identical = 0
    with BoardLink(url, timeout=timeout) as link:
        info = link.wait_ready(timeout=timeout)
        check_board(info, expected, tuple(images.shape[1:]), url)
        if info.protocol_version < PROFILE_SINCE_VERSION:
            raise ProfileUnsupportedError(
                f"{url}: the firmware speaks protocol version {info.protocol_version}, which has no PROFILE "
                f"(version {PROFILE_SINCE_VERSION} and later): rebuild and flash it with this pbkit")
        for i, image in enumerate(images):
            prof = link.profile(image.tobytes())
            if len(prof.layer_ticks) != len(layers):
                raise ModelMismatchError(
                    f"{url}: the board timed {len(prof.layer_ticks)} layers, the checkpoint has {len(layers)}")
            counts.append([counter_value(info, t) for t in prof.layer_ticks])
            identical += prof.logits == expected.logits[i].tolist()
            whole.append(counter_value(info, link.infer(image.tobytes()).ticks))
    return summarize_profile(info, expected.model_sha256, layers, counts, whole, identical)


def summarize_profile(info: BoardInfo, model_sha256: str, layers: list[ModelLayer], counts: list[list[float]],
                      whole: list[float], identical: int) -> dict:
    """The result `pbkit profile --json` prints. Per layer: ``count`` (instructions or cycles,
    as ``counter`` says; median over the images), ``share`` of the layers' total and, for binary
    layers, ``xnor_bits`` (the useful XNOR bits: out_h x out_w x out_channels x 9 x in_channels),
    ``useful_words`` (those bits / 32: a word of 16 channels counts as half a word) and
    ``per_32_bits`` (count per useful word). ``total`` is the layers' sum, ``whole_image`` INFER's
    count for the same images (medians); ``binary_per_32_bits`` is the binary layers' together and
    ``worst_binary_layer`` the layer with the highest per_32_bits."""
    rows = []
    medians = [statistics.median(col) for col in zip(*counts, strict=True)]
    total = sum(medians)
    for layer, count in zip(layers, medians, strict=True):
        useful = layer.xnor_bits / 32
        rows.append({"name": layer.name, "kind": layer.kind, "output": layer.output, "count": count,
                     "share": count / total if total else None, "xnor_bits": layer.xnor_bits,
                     "useful_words": useful, "per_32_bits": count / useful if useful else None})
    binary = [r for r in rows if r["kind"] == "binary"]
    useful_words = sum(r["useful_words"] for r in binary)
    worst = max(binary, key=lambda r: r["per_32_bits"], default=None)
    return {
        "board": info.board, "counter": info.counter, "clock_hz": info.clock_hz,
        "icount_shift": info.icount_shift, "model_sha256": model_sha256, "images": len(whole),
        "layers": rows, "total": total, "whole_image": statistics.median(whole),
        "binary_useful_words": useful_words,
        "binary_per_32_bits": sum(r["count"] for r in binary) / useful_words if useful_words else None,
        "worst_binary_layer": {"name": worst["name"], "per_32_bits": worst["per_32_bits"]} if worst else None,
        "logits_identical": identical / len(whole),
    }


def format_profile(result: dict) -> str:
    """The per-layer table `pbkit profile` prints."""
    unit = "instr" if result["counter"] == "instructions" else "cycles"
    head = f"{'layer':<17}{result['counter']:>14}{'share':>8}{'useful words':>14}{unit + '/32 bits':>16}"
    lines = [head, "-" * len(head)]

    def line(name: str, count: float, share: float | None, words: float, per: float | None) -> str:
        return (f"{name:<17}{count:>14,.0f}{'-' if share is None else f'{100 * share:.1f}%':>8}"
                f"{f'{words:,.0f}' if words else '-':>14}{'-' if per is None else f'{per:.2f}':>16}")

    for r in result["layers"]:
        lines.append(line(r["name"], r["count"], r["share"], r["useful_words"], r["per_32_bits"]))
    lines.append("-" * len(head))
    lines.append(line("total per image", result["total"], 1.0 if result["total"] else None,
                      result["binary_useful_words"], result["binary_per_32_bits"]))
    lines.append(f"{'INFER, one call':<17}{result['whole_image']:>14,.0f}  (the same images without the layer hook)")
    if result["worst_binary_layer"]:
        worst = result["worst_binary_layer"]
        lines.append(f"useful words: out_h x out_w x out_channels x 9 x in_channels / 32 XNORed bits (RSign and "
                     f"pooling included in the layer's count); the most per 32 bits: {worst['name']} "
                     f"{worst['per_32_bits']:.2f}")
    return "\n".join(lines)
