"""Turning a loaded backbone into its fastest equivalent form, once, at load time.

Three steps, each exact in fp32 up to float rounding (the parity tests run on the result):
1. fold: each backbone folds its layer scales and BatchNorms into neighbouring linear maps
   (`fold_for_inference()`), so no per-channel multiply is left between them;
2. cast: in bf16, every convolution and linear layer of the body gets bf16 weights once,
   instead of autocast re-casting fp32 weights on every call (about a tenth of the time);
   the classifier heads (`fp32_modules()`), the input normalisation and the softmax stay fp32;
3. fuse: on the CPU, with oneDNN, every ConvAct runs its activation (and a residual sum where
   the backbone asks) as oneDNN post-ops. (oneDNN's fused linear op measured slower here than
   torch's addmm for the attention layers, so those stay plain nn.Linear.)
No tracing or compilation: the cost is a few milliseconds, not torch.compile's tens of seconds.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from models.backbones.layers import ConvAct

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# oneDNN keeps 1024 compiled primitives by default. The default model's torch networks have
# about 350 convolutions, and every batch size the pool forms is another set of shapes, so a
# stream of mixed batches (what the inference actors see) overflowed the cache and recompiled
# convolutions on most calls: with room for 8192, mixed batches of 8-16 frames ran 13-25% faster
# in fp32 on the 2-core Xeon (40-44 vs 48-59 ms per frame, five runs each) and the process
# peaked 0.6 GB lower (less allocation churn). The operator's own setting wins.
ONEDNN_CACHE_VARIABLE = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
ONEDNN_PRIMITIVE_CACHE_CAPACITY = 8192


def reserve_onednn_primitive_cache() -> None:
    """Give oneDNN room for every shape the model meets. oneDNN reads the variable when it
    first builds a primitive, so this runs before any network is built in the process; where a
    convolution already ran, the cache keeps its size (a missed speed-up, never an error)."""
    os.environ.setdefault(ONEDNN_CACHE_VARIABLE, str(ONEDNN_PRIMITIVE_CACHE_CAPACITY))


def onednn_available(device: torch.device) -> bool:
    """oneDNN's fused convolution ops exist only for CPU tensors in builds with mkldnn."""
    return (device.type == "cpu" and torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_convolution_pointwise"))


@torch.no_grad()
def prepare_for_inference(backbone: nn.Module, device: torch.device, precision: str,
                          *, fuse: bool = True) -> nn.Module:
    """Fold, cast to `precision` ('fp32' | 'bf16'), move to `device` channels_last, and fuse.

    The backbone must be in eval mode with fp32 weights; it is changed in place and returned.
    Call once: folding twice would apply the layer scales twice.
    """
    if precision not in DTYPES:
        raise ValueError(f"precision must be one of {tuple(DTYPES)}, got {precision!r}")
    backbone.fold_for_inference()
    backbone.to(device, memory_format=torch.channels_last)
    keep_fp32 = {id(module) for head in backbone.fp32_modules() for module in head.modules()}
    for module in backbone.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)) and id(module) not in keep_fp32:
            module.to(DTYPES[precision])
    use_onednn = fuse and onednn_available(device)
    for module in backbone.modules():
        if isinstance(module, ConvAct):
            module.use_onednn = use_onednn
    return backbone.eval()
