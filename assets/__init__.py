"""The bundled sample scenes' maker, kept apart from the engine library.

`procedural` ray-casts the analytic scenes, `ground_truth.render_sample_view` renders one from any camera
(the tests check warps against it) and `make_samples.py` writes or checks the files under `samples/`.
Import it as the package `assets` from the repository root (as the tests do); the engine only reads the
files, through `engine.samples`.
"""
