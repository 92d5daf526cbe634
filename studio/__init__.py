"""GEN3C Studio: the Gradio camera-path editor over the engine (see studio/layout.py)."""
