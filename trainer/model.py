"""PopBin ReActNet-18 for CIFAR-10: trained with straight-through quantizers, evaluated as integers.

In training mode the network runs in floating point with every quantizer in place (QAT). In
eval mode `forward` runs the folded integer model (`fold.fold_model`), the exact computation
the C kernel does, so the accuracy measured in PyTorch is the accuracy on the board.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pbkit.ir import HEAD_MAX_EXPONENT, THERMOMETER_PLANES, thermometer_thresholds

from .quantizers import (
    fake_quant_to_grid,
    levels_ste,
    quantize_int8,
    quantize_pow2,
    round_ste,
    sign_approx_ste,
    sign_identity_ste,
    sign_ste,
    thermometer_planes,
)

MODELS = ("reactnet18", "birealnet18")  # ReActNet: learnable RSign thresholds; Bi-Real: sign at 0
# baseline: BN then requantization to the residual grid (integer multiply + shift on the device);
# ptq-popcount: a trained baseline with sign(BN(p)) * alpha * N, no retraining; simple-qat-popcount:
# +-alpha trained (alpha = mean |W| of the layer); popbin: +-N / division_num trained; real: a float
# network (binary nothing), only as a distillation teacher. docs/modes.md has the readings.
MODES = ("popbin", "baseline", "ptq-popcount", "simple-qat-popcount", "real")
# PopBin's division_num rules (the deck's five rows): delta = N / division_num, N = 9 C.
DIVISIONS = ("c_plus_a", "n_plus_a", "c_times_a", "n_times_a", "minmax")
# The pseudo-gradient of the branch sign, sign(BN(p)): "clipped" passes it where |BN(p)| <= 1,
# "identity" everywhere, "approx" weighs it by 2 - 2|BN(p)| (Bi-Real's ApproxSign). Training only:
# the forward, the fold and the device are the same.
BRANCH_STES = ("clipped", "identity", "approx")
# Values the popbin branch adds: 2 = +-delta (one compare per output, the deck's PopBin); 3 = -delta, 0,
# +delta (two compares per output, still no multiply). Only 2 exports today.
BRANCH_LEVELS = (2, 3)
# The stem: int8 = 3x3 conv of int8 weights on pixel - 128 (multiplies); bitplanes = the image as thermometer
# bit planes (THERMOMETER_PLANES per colour channel), a binary 3x3 conv (XOR + popcount), thresholds.
STEMS = ("int8", "bitplanes")
# The head: int8 = FC with int8 weights (multiplies); shift = power-of-two weights, shifts and adds/subtracts.
HEADS = ("int8", "shift")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the network; stored in every checkpoint."""

    model: str = "reactnet18"
    width: float = 0.25
    mode: str = "popbin"
    division: str = "c_times_a"
    grid: int = 4  # stage-1 residual units per 1.0
    stem_max: int = 4  # stem output levels: -stem_max..stem_max units (2*stem_max compares)
    num_classes: int = 10
    branch_ste: str = "clipped"
    branch_levels: int = 2
    stem: str = "int8"
    head: str = "int8"
    # One delta per output channel (a learnable `a` each) instead of one per layer: still an add, no
    # multiply, but the C kernels take one delta per layer, so such models train, fold and evaluate
    # as integers here and `export` refuses them (the gap ablation's reading, docs/results.md).
    delta_per_channel: bool = False

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; available: {', '.join(MODELS)}")
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; available: {', '.join(MODES)}")
        if self.division not in DIVISIONS:
            raise ValueError(f"unknown division rule {self.division!r}; available: {', '.join(DIVISIONS)}")
        if self.branch_levels not in BRANCH_LEVELS:
            raise ValueError(f"branch_levels must be one of {BRANCH_LEVELS}, not {self.branch_levels}")
        if self.branch_levels != 2 and (self.mode != "popbin" or self.branch_ste != "clipped"):
            raise ValueError("branch_levels other than 2 need --mode popbin and the clipped branch STE")
        if self.delta_per_channel and (self.mode != "popbin" or self.division == "minmax"):
            raise ValueError("a per-channel delta needs --mode popbin and a division rule with a learnable a "
                             "(not minmax)")
        if self.branch_ste not in BRANCH_STES:
            raise ValueError(f"unknown branch STE {self.branch_ste!r}; available: {', '.join(BRANCH_STES)}")
        if self.stem not in STEMS:
            raise ValueError(f"unknown stem {self.stem!r}; available: {', '.join(STEMS)}")
        if self.head not in HEADS:
            raise ValueError(f"unknown head {self.head!r}; available: {', '.join(HEADS)}")
        c0 = 64 * self.width
        if self.width <= 0 or abs(c0 - round(c0)) > 1e-9:
            raise ValueError(f"width {self.width} gives C0 = 64 x {self.width} = {c0:g}: not a whole number")

    @property
    def base_channels(self) -> int:
        return int(round(64 * self.width))

    def stage_channels(self) -> list[int]:
        c0 = self.base_channels
        return [c0, 2 * c0, 4 * c0, 8 * c0]

    def to_dict(self) -> dict:
        """The fields; `stem`, `head` and `delta_per_channel` only where not the default, so older configs and
        hashes stay as they were."""
        d = asdict(self)
        for name in ("stem", "head"):
            if d[name] == "int8":
                del d[name]
        if not d["delta_per_channel"]:
            del d["delta_per_channel"]
        return d


def pad_minus_one(x: torch.Tensor) -> torch.Tensor:
    """Pad +-1 activations by one pixel of -1 (bit 0): every output then sums exactly N products."""
    return F.pad(x, (1, 1, 1, 1), value=-1.0)


class Stem(nn.Module):
    """int8 3x3 conv on (pixel - 128), BatchNorm, quantized to 2*stem_max+1 grid levels."""

    def __init__(self, out_channels: int, grid: int, stem_max: int, quantized: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, out_channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.grid, self.stem_max, self.quantized = grid, stem_max, quantized

    def forward(self, centered: torch.Tensor) -> torch.Tensor:
        if not self.quantized:  # the float teacher
            return F.hardtanh(self.bn(F.conv2d(centered / 128.0, self.conv.weight, padding=1)))
        q, scale = quantize_int8(self.conv.weight, per_channel=True)
        y = self.bn(F.conv2d(centered, q * scale, padding=1))
        levels = torch.clamp(round_ste(y * self.grid), -self.stem_max, self.stem_max)
        return levels / self.grid


class BitPlaneStem(nn.Module):
    """Thermometer bit planes of the image, binary 3x3 conv (+-1 weights, -1 padding), BN, 2*stem_max+1 levels.

    The conv sums exactly N = 9 x 3 x planes products of +-1 (p = N - 2 popcount on the device), so the
    level thresholds fold onto p as the int8 stem's fold onto its sum.
    """

    def __init__(self, out_channels: int, grid: int, stem_max: int, quantized: bool = True,
                 planes: int = THERMOMETER_PLANES) -> None:
        super().__init__()
        self.register_buffer("thresholds", torch.from_numpy(thermometer_thresholds(planes)), persistent=False)
        self.planes = planes
        self.weight = nn.Parameter(torch.randn(out_channels, 3 * planes, 3, 3) * 0.01)
        self.bn = nn.BatchNorm2d(out_channels)
        self.grid, self.stem_max, self.quantized = grid, stem_max, quantized

    @property
    def fan_in(self) -> int:
        return 9 * 3 * self.planes

    def forward(self, centered: torch.Tensor) -> torch.Tensor:
        x = pad_minus_one(thermometer_planes(centered, self.thresholds))
        if not self.quantized:  # the float teacher
            return F.hardtanh(self.bn(F.conv2d(x, self.weight)))
        y = self.bn(F.conv2d(x, sign_ste(self.weight)))
        levels = torch.clamp(round_ste(y * self.grid), -self.stem_max, self.stem_max)
        return levels / self.grid


def _initial_log_a(division: str, channels: int) -> float:
    """log of the `a` that makes delta start at 1.0 (the stem's output range), per division rule."""
    n = 9 * channels
    return {"c_plus_a": math.log(n - channels), "n_plus_a": math.log(1e-3), "c_times_a": math.log(9.0),
            "n_times_a": 0.0, "minmax": 0.0}[division]


class PopBinBlock(nn.Module):
    """RSign -> binary 3x3 conv -> BN -> [mode] added to a parameter-free shortcut.

    [mode] is sign -> +-delta for the popcount modes (`delta`), or requantization of BN's output
    to the residual grid for `baseline`. For popbin, delta = N / division_num with N = 9 C and
    `a` = exp(log_a) learnable per layer (log-parametrised so Adam's steps are relative),
    snapped to the output grid, >= 1 unit.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, grid_in: int,
                 division: str = "c_times_a", learn_rsign: bool = True, mode: str = "popbin",
                 branch_ste: str = "clipped", branch_levels: int = 2, delta_per_channel: bool = False) -> None:
        super().__init__()
        if stride not in (1, 2) or out_channels not in (in_channels, 2 * in_channels):
            raise ValueError("a block keeps its channels, or doubles them with stride 2")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.grid_in = grid_in
        self.grid_out = grid_in * 4 if stride == 2 else grid_in
        self.division, self.mode = division, mode
        self.branch_sign = {"clipped": sign_ste, "identity": sign_identity_ste, "approx": sign_approx_ste}[branch_ste]
        self.branch_levels = branch_levels
        # Two-step training runs its first step with real-valued weights (binary activations only).
        self.binary_weights = True
        if learn_rsign:
            self.rsign_threshold = nn.Parameter(torch.zeros(in_channels))
        else:  # Bi-Real: plain sign at 0, kept as a buffer so that the fold reads it the same way
            self.register_buffer("rsign_threshold", torch.zeros(in_channels))
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3) * 0.01)
        self.bn = nn.BatchNorm2d(out_channels)
        log_a = torch.tensor(_initial_log_a(division, in_channels))
        self.delta_per_channel = delta_per_channel
        if delta_per_channel:  # one `a` per output channel, all starting where the layer's one does
            log_a = log_a.repeat(out_channels)
        if division == "minmax":  # no learnable a: the normalisation range is fixed
            self.register_buffer("log_a", log_a)
        else:
            self.log_a = nn.Parameter(log_a)
        if mode == "ptq-popcount":  # set once by `convert_to_ptq`, in output-grid units
            self.register_buffer("ptq_delta_units", torch.ones(()))

    @property
    def fan_in(self) -> int:
        return 9 * self.in_channels

    def delta(self) -> torch.Tensor:
        """delta = N / division_num, snapped to the output grid (at least one unit); [Cout] when per channel.

        c_plus_a: N / (C + a); n_plus_a: N / (N + a); c_times_a: N / (C a) = 9 / a;
        n_times_a: N / (N a) = 1 / a; minmax: p min-max normalised over [-N, N], so
        N / (N - (-N)) = 1/2 (docs/integer-contract.md has the reasoning).
        """
        if self.mode == "ptq-popcount":
            return self.ptq_delta_units / self.grid_out
        if self.mode == "simple-qat-popcount":  # +-alpha, the layer's weight scaling factor mean |W|
            units = torch.clamp(round_ste(self.weight.abs().mean() * self.grid_out), min=1.0)
            return units / self.grid_out
        n, c, a = float(self.fan_in), float(self.in_channels), torch.exp(self.log_a)
        raw = {"c_plus_a": lambda: n / (c + a), "n_plus_a": lambda: n / (n + a), "c_times_a": lambda: 9.0 / a,
               "n_times_a": lambda: 1.0 / a, "minmax": lambda: 0.5 + 0.0 * a}[self.division]()
        units = torch.clamp(round_ste(raw * self.grid_out), min=1.0)
        return units / self.grid_out

    def delta_map(self) -> torch.Tensor:
        """delta shaped to scale an N x Cout x H x W branch."""
        delta = self.delta()
        return delta.view(1, -1, 1, 1) if delta.dim() else delta

    def rsign_threshold_q(self) -> torch.Tensor:
        return fake_quant_to_grid(self.rsign_threshold, self.grid_in)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 2:
            x = F.avg_pool2d(x, 2)  # the device sums; the 1/4 lives in the finer output grid
        if self.out_channels == 2 * self.in_channels:
            x = torch.cat([x, x], dim=1)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "real":  # the float teacher: nothing binary, nothing on a grid
            a = F.hardtanh(x - self.rsign_threshold.view(1, -1, 1, 1))
            return self.shortcut(x) + self.bn(F.conv2d(F.pad(a, (1, 1, 1, 1)), self.weight, stride=self.stride))
        a = sign_ste(x - self.rsign_threshold_q().view(1, -1, 1, 1))
        w = sign_ste(self.weight) if self.binary_weights else self.weight
        p = F.conv2d(pad_minus_one(a), w, stride=self.stride)
        if self.mode == "baseline":  # BN's output requantized to the residual grid (multiply + shift on device)
            return self.shortcut(x) + fake_quant_to_grid(self.bn(p), self.grid_out)
        if self.branch_levels != 2:
            return self.shortcut(x) + self.delta_map() * levels_ste(self.bn(p), self.branch_levels)
        b = self.branch_sign(self.bn(p))
        return self.shortcut(x) + self.delta_map() * b


class PopBinNet18(nn.Module):
    """ReActNet-18 or Bi-RealNet-18 for CIFAR-10 in PopBin form: stem, 4 stages x 4 binary units, head."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        channels = config.stage_channels()
        stem = BitPlaneStem if config.stem == "bitplanes" else Stem
        self.stem = stem(channels[0], config.grid, config.stem_max, quantized=config.mode != "real")
        blocks, c_in, grid = [], channels[0], config.grid
        for stage, c_out in enumerate(channels):
            for i in range(4):
                stride = 2 if (stage > 0 and i == 0) else 1
                blk = PopBinBlock(c_in, c_out, stride, grid, config.division,
                                  learn_rsign=config.model == "reactnet18", mode=config.mode,
                                  branch_ste=config.branch_ste, branch_levels=config.branch_levels,
                                  delta_per_channel=config.delta_per_channel)
                blocks.append(blk)
                c_in, grid = c_out, blk.grid_out
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(channels[-1], config.num_classes)

    def float_forward(self, images: torch.Tensor) -> torch.Tensor:
        """The QAT graph: uint8 images N x 3 x 32 x 32 -> float logits."""
        x = self.stem(images.to(self.fc.weight.dtype) - 128.0)
        for blk in self.blocks:
            x = blk(x)
        pooled = x.mean(dim=(2, 3))
        if self.config.mode == "real":
            return self.fc(pooled)
        q, scale = self.head_levels()
        return F.linear(pooled, q * scale, self.fc.bias)

    def head_levels(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The head's integer weight levels (int8, or powers of two for `head="shift"`) and their scale."""
        if self.config.head == "shift":
            return quantize_pow2(self.fc.weight, HEAD_MAX_EXPONENT)
        return quantize_int8(self.fc.weight, per_channel=False)

    def set_binary_weights(self, binary: bool) -> None:
        """Two-step training: False for step one (binary activations, real weights)."""
        for blk in self.blocks:
            blk.binary_weights = binary

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.training or self.config.mode == "real" or not self.blocks[0].binary_weights:
            return self.float_forward(images)
        from .fold import fold_model
        from .integer_graph import integer_logits

        ir = fold_model(self)
        return integer_logits(ir, images).to(torch.float64) * ir.meta["logit_scale"]


def build_model(config: ModelConfig) -> PopBinNet18:
    return PopBinNet18(config)


def convert_to_ptq(baseline: PopBinNet18) -> PopBinNet18:
    """PTQ-popcount: a trained baseline's BN output replaced by sign(BN(p)) * alpha * N, no retraining.

    alpha = mean |W| of the layer's latent weights (the binary conv's scaling factor), N = 9 C,
    snapped to the output grid (at least one unit). Everything else is copied unchanged.
    """
    if baseline.config.mode != "baseline":
        raise ValueError(f"ptq-popcount converts a baseline model; this one is mode {baseline.config.mode!r}")
    config = ModelConfig(**{**baseline.config.to_dict(), "mode": "ptq-popcount"})
    model = build_model(config)
    state = baseline.state_dict()
    for i, blk in enumerate(baseline.blocks):
        alpha = blk.weight.detach().abs().mean()
        state[f"blocks.{i}.ptq_delta_units"] = torch.clamp(torch.floor(alpha * blk.fan_in * blk.grid_out + 0.5),
                                                           min=1.0)
    model.load_state_dict(state, strict=True)
    return model.eval()
