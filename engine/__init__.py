"""GEN3C Studio engine: image -> depth -> 3D cache -> camera paths -> warps -> diffusion video.

Headless: never imports gradio or plotly. The public API is listed in engine/API.md.
"""
__version__ = "0.1.0"
