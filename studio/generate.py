"""The generate panel's backend: weights status, one pipeline per weights folder, a cancellable run.

The loaded pipeline is a process-wide cache of *model weights* (shared, read-only), not user data;
GPU work is serialised by the event's `concurrency_id="gpu"`, `concurrency_limit=1`.
"""
from __future__ import annotations

import threading

from engine import validate
from engine.errors import InputError, WeightsMissingError

_pipelines: dict = {}
_pipeline_lock = threading.Lock()


def weights_status(weights_dir) -> tuple[bool, str]:
    """(ok, markdown): whether generation weights are present, else exactly what to fetch and where."""
    try:
        from engine import models

        status = models.find_weights(weights_dir)
    except WeightsMissingError as exc:
        return False, f"**Generation unavailable.** {exc}"
    except (ImportError, AttributeError) as exc:  # engine.models not installed in this build
        return False, f"**Generation unavailable:** the model loader is missing ({exc.__class__.__name__})."
    if status.ok:
        return True, f"Weights found in `{status.root}`. One generation runs at a time; queue position is shown."
    first, _, rest = str(status.help).partition("\n")
    return False, f"**Generation unavailable: weights missing.** {first}\n\n```text\n{rest.strip()}\n```"


def _pipeline(weights_dir):
    from engine.pipeline import Gen3CPipeline

    key = str(weights_dir)
    with _pipeline_lock:
        if key not in _pipelines:
            _pipelines.clear()  # one model set in memory at a time
            _pipelines[key] = Gen3CPipeline.from_pretrained(weights_dir)
        return _pipelines[key]


def validate_settings(prompt, negative_prompt, steps, guidance, seed, cfg) -> dict:
    """The generate panel's values by engine.validate's rules, as Gen3CPipeline.generate keyword arguments."""
    options = validate.sampling_options(steps, guidance, cfg, seed, names={"num_steps": "steps", "cfg": "CFG policy"})
    return dict(prompt=validate.prompt(prompt), negative_prompt=validate.prompt(negative_prompt, "negative prompt"),
                num_steps=options.num_steps, guidance=options.guidance, seed=options.seed, cfg=options.cfg)


def run(session, weights_dir, settings: dict, progress=None, cancel=None):
    """Generate along the session's path; returns engine.pipeline.GenerationResult."""
    if session.source is None:
        raise InputError("load a scene first")
    if session.path is None:
        raise InputError("there is no camera path yet: pick a preset or add keyframes")
    ok, message = weights_status(weights_dir)
    if not ok:
        raise WeightsMissingError(message)
    image, depth, fit = session.source
    from studio import zerogpu

    if zerogpu.active():  # Spaces: the import-time models, in GPU calls that fit the budget
        return zerogpu.generate(image, session.path, session.num_frames, depth=depth, fit=fit, progress=progress,
                                cancel=cancel, **settings)
    pipe = _pipeline(weights_dir)
    return pipe.generate(image, session.path, session.num_frames, depth=depth, fit=fit, progress=progress,
                         cancel=cancel, **settings)
