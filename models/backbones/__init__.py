"""Native PyTorch backbones whose weights are imported from installed packages.

Each takes uint8 RGB frames (N, H, W, 3) in `forward`, or float RGB 0..255 pixels (N, 3, H, W)
in `forward_pixels`, and applies its own input normalisation inside.
"""
