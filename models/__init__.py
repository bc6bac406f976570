"""The classifier side of the engine: taxonomy, backbones, weight import, hierarchical head.

Nothing here knows about video, Ray or the wire protocol (DESIGN.md section 2): a model maps a
batch of uint8 RGB frames to per-label confidences and that is all.
"""
