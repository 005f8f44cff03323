"""Operation counts per layer for one image: what the deck's "units of Mul" table counts, and more.

Counts are analytic (from the architecture), for the device's integer graph:
- binary layers: XNOR words, word popcounts, adds (popcount accumulation, residual and pooling
  adds), compares (RSign bits, popcount thresholds), and the baseline's requantization
  multiply + shift per output element (c_o x h_o x w_o, the deck's formula);
- the stem's requantization (baseline: multiply + shift per output; PopBin: thermometer compares);
- the stem's and the head's MACs, which are real multiplies in every mode, reported apart, unless the model
  takes the multiply-free options: the bit-plane stem (`stem="bitplanes"`: thermometer compares, XNOR words and
  popcounts, level compares) and the shift head (`head="shift"`: a shift and an add or subtract per weight).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pbkit.ir import THERMOMETER_PLANES, IntegerModel

MODES = ("baseline", "ptq-popcount", "simple-qat-popcount", "popbin")
MODELS = ("reactnet18", "birealnet18")
STEMS = ("int8", "bitplanes")
HEADS = ("int8", "shift")


@dataclass
class LayerOps:
    name: str
    kind: str  # "stem", "binary" or "head"
    output: str  # C x H x W
    xnor_words: int = 0
    popcounts: int = 0
    adds: int = 0
    compares: int = 0
    multiplies: int = 0  # requantization multiplies (the deck's count)
    shifts: int = 0
    macs: int = 0  # stem / head multiply-accumulates, counted apart

    def to_dict(self) -> dict:
        return asdict(self)


def _words(channels: int) -> int:
    return (channels + 31) // 32


def _stem_ops(stem: str, c0: int, h: int, w: int, stem_levels: int, requantize: bool) -> LayerOps:
    stem_out = c0 * h * w
    if stem == "bitplanes":  # one plane word a pixel (3 x L compares), 9 XNOR words + popcounts an output
        words = 9 * stem_out
        return LayerOps(name="stem", kind="stem", output=f"{c0}x{h}x{w}", xnor_words=words, popcounts=words,
                        adds=words, compares=3 * THERMOMETER_PLANES * h * w + stem_out * stem_levels)
    return LayerOps(name="stem", kind="stem", output=f"{c0}x{h}x{w}", macs=27 * stem_out,
                    multiplies=stem_out if requantize else 0, shifts=stem_out if requantize else 0,
                    compares=0 if requantize else stem_out * stem_levels)


def count_ops(model: str, width: float, mode: str, stem_levels: int = 8, image: int = 32,
              classes: int = 10, stem: str = "int8", head: str = "int8") -> list[LayerOps]:
    if stem not in STEMS or head not in HEADS:
        raise ValueError(f"unknown stem {stem!r} or head {head!r}; available: stems {', '.join(STEMS)}, heads "
                         f"{', '.join(HEADS)}")
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; available: {', '.join(MODELS)}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; available: {', '.join(MODES)}")
    c0 = 64 * width
    if width <= 0 or abs(c0 - round(c0)) > 1e-9:
        raise ValueError(f"width {width} gives C0 = {c0:g}: not a whole number")
    c0 = int(round(c0))
    requantize = mode == "baseline"
    h = w = image
    layers = [_stem_ops(stem, c0, h, w, stem_levels, requantize)]
    c_in = c0
    for stage, c_out in enumerate([c0, 2 * c0, 4 * c0, 8 * c0]):
        for unit in range(4):
            stride = 2 if stage > 0 and unit == 0 else 1
            ho, wo = h // stride, w // stride
            outputs = c_out * ho * wo
            words = outputs * 9 * _words(c_in)
            pool_adds = 3 * c_in * ho * wo if stride == 2 else 0
            layers.append(LayerOps(
                name=f"stage{stage + 1}.unit{unit + 1}", kind="binary", output=f"{c_out}x{ho}x{wo}",
                xnor_words=words, popcounts=words,
                adds=words + outputs + pool_adds,  # popcount sums, residual add, 2x2 sum pool
                compares=c_in * h * w + (0 if requantize else outputs),  # RSign bits (+ popcount thresholds)
                multiplies=outputs if requantize else 0, shifts=outputs if requantize else 0,
            ))
            c_in, h, w = c_out, ho, wo
    pool_adds, terms = c_in * (h * w - 1), c_in * classes
    if head == "shift":  # at most one shift and one add or subtract per weight (none for a 0)
        layers.append(LayerOps(name="head", kind="head", output=f"{classes}", adds=pool_adds + terms,
                               shifts=terms, compares=classes - 1))
    else:
        layers.append(LayerOps(name="head", kind="head", output=f"{classes}", adds=pool_adds, macs=terms,
                               compares=classes - 1))
    return layers


@dataclass(frozen=True)
class ModelLayer:
    """One layer of an exported model, in the order the firmware runs (and its layer hook counts) them."""

    name: str  # stem, stage1.unit1 .. stage4.unit4, head: count_ops's names
    kind: str  # "stem", "binary" or "head"
    output: str  # C x H x W, or the classes
    xnor_words: int  # 32-bit binary words the layer XNORs: out_h x out_w x out_channels x 9 x ceil(Cin / 32)
    xnor_bits: int = 0  # the useful XNOR bits in them: out_h x out_w x out_channels x 9 x Cin


def model_layers(ir: IntegerModel) -> list[ModelLayer]:
    """The layers of an integer model, named as count_ops names them: a stage starts at every block
    that downsamples or widens, so any block table gets names, not only ReActNet-18's."""
    _, h, w = ir.input_shape
    c0 = ir.stem.weight.shape[0]
    layers = [ModelLayer("stem", "stem", f"{c0}x{h}x{w}", 0)]
    stage, unit = 1, 0
    for i, blk in enumerate(ir.blocks):
        if i > 0 and (blk.stride == 2 or blk.in_channels != blk.out_channels):
            stage, unit = stage + 1, 0
        unit += 1
        h, w = h // blk.stride, w // blk.stride
        outputs = h * w * blk.out_channels
        layers.append(ModelLayer(f"stage{stage}.unit{unit}", "binary", f"{blk.out_channels}x{h}x{w}",
                                 outputs * 9 * _words(blk.in_channels), outputs * 9 * blk.in_channels))
    layers.append(ModelLayer("head", "head", f"{ir.num_classes}", 0))
    return layers


def totals(layers: list[LayerOps]) -> dict:
    keys = ("xnor_words", "popcounts", "adds", "compares", "multiplies", "shifts", "macs")
    total = {k: sum(getattr(layer, k) for layer in layers) for k in keys}
    hidden = [layer for layer in layers if layer.kind == "binary"]
    total["hidden_multiplies"] = sum(layer.multiplies for layer in hidden)
    total["hidden_shifts"] = sum(layer.shifts for layer in hidden)
    total["stem_head_macs"] = total.pop("macs")
    total["all_multiplies"] = total["multiplies"] + total["stem_head_macs"]
    return total
