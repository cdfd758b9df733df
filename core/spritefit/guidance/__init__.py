"""Guidance: losses that steer a fit by something other than a target image.

    guidance = load_clip_guidance("a red fox in the snow")
    scene = spritefit.fit(None, "leaves", n=500, guidance=guidance, canvas=(384, 384))
"""
from .clip import DEFAULT_MODEL, DEFAULT_WEIGHTS, ClipGuidance, clip_similarity, load_clip, load_clip_guidance

__all__ = ["ClipGuidance", "clip_similarity", "load_clip", "load_clip_guidance", "DEFAULT_MODEL", "DEFAULT_WEIGHTS"]
