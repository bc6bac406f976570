"""Frame preprocessing: decoded 4:2:0 planes -> model input (Triton on GPU, torch on CPU).

Call `kernels.yuv.yuv_to_model_input` with planes from `kernels.av_planes.planes_from_av_frame`
(PyAV) or any uint8 tensors. This package knows nothing of the engine; see kernels/README.md.
"""

from kernels.yuv import YuvInputError, yuv_to_model_input

__all__ = ["YuvInputError", "yuv_to_model_input"]
