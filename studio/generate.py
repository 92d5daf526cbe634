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


# what to download, in the words and order of the panel (sizes approximate, as downloaded)
DOWNLOADS = (
    ("transformer", "GEN3C video model (Cosmos DiT, 7B)", "nvidia/GEN3C-Cosmos-7B", "model.pt", "about 15 GB"),
    ("vae", "video VAE (the Cosmos tokenizer)", "nvidia/Cosmos-Tokenize1-CV8x8x8-720p",
     "encoder.jit, decoder.jit, mean_std.pt", "under 1 GB"),
    ("text_encoder", "text encoder T5-11B (optional: see 'No text encoder')", "google-t5/t5-11b",
     "the model folder", "about 45 GB"),
    ("moge", "depth model MoGe ViT-L (optional: only for your own images)", "Ruicheng/moge-vitl", "model.pt",
     "about 1.3 GB"),
)
TEXT_PARTS = ("text_encoder", "text_tokenizer")


def weights_status(weights_dir, zero_text: bool = False) -> tuple[bool, str]:
    """(ok, markdown): whether generation weights are present (without the text encoder when `zero_text`),
    else a plain list of what to download with sizes and the commands in a collapsible block."""
    try:
        from engine import models

        status = models.find_weights(weights_dir)
    except WeightsMissingError as exc:
        return False, f"**Generation unavailable.** {exc}"
    except (ImportError, AttributeError) as exc:  # engine.models not installed in this build
        return False, f"**Generation unavailable:** the model loader is missing ({exc.__class__.__name__})."
    needed = [p for p in status.missing if not (zero_text and p in TEXT_PARTS)]
    if not needed:
        mode = " (no text encoder: zero prompt embeddings)" if status.missing else ""
        return True, (f"Weights found in `{status.root}`{mode}. One generation runs at a time; "
                      "queue position is shown.")
    have_text = not any(p in status.missing for p in TEXT_PARTS)
    lines = [f"**Generation needs the model weights** (looked in `{status.root}`). Download:", ""]
    for part, what, repo, names, size in DOWNLOADS:
        present = status.present.get(part, False) or (part == "text_encoder" and have_text)
        mark = "found" if present else size
        lines.append(f"- {what}: `{repo}` ({names}), {mark}")
    lines += ["", "Without the text encoder, tick **No text encoder**: the prompt is then ignored (zero prompt "
              "embeddings, as the official `--disable_prompt_encoder`).", "",
              "<details><summary>Download and convert commands</summary>", "", "```text",
              str(status.help).strip(), "```", "", "</details>"]
    return False, "\n".join(lines)


def _pipeline(weights_dir, zero_text: bool = False):
    from engine.pipeline import Gen3CPipeline

    key = (str(weights_dir), bool(zero_text))
    with _pipeline_lock:
        if key not in _pipelines:
            _pipelines.clear()  # one model set in memory at a time
            _pipelines[key] = Gen3CPipeline.from_pretrained(weights_dir, zero_text=bool(zero_text))
        return _pipelines[key]


def fast_mode_choices() -> list[tuple[str, str]]:
    """(label, engine cache mode) of the fast-mode setting: exact first, the approximate ones after."""
    from engine.fast_cache import CACHE_MODES

    return [("exact (default)" if mode == "none" else f"{mode} (approximate)", mode) for mode in CACHE_MODES]


def validate_settings(prompt, negative_prompt, steps, guidance, seed, cfg, fast_mode="none") -> dict:
    """The generate panel's values by engine.validate's rules, as Gen3CPipeline.generate keyword arguments."""
    from engine.fast_cache import CacheSettings

    options = validate.sampling_options(steps, guidance, cfg, seed, names={"num_steps": "steps", "cfg": "CFG policy"})
    try:
        cache = CacheSettings.of(fast_mode or "none")
    except InputError as exc:
        raise InputError(f"fast mode: {exc}") from None
    return dict(prompt=validate.prompt(prompt), negative_prompt=validate.prompt(negative_prompt, "negative prompt"),
                num_steps=options.num_steps, guidance=options.guidance, seed=options.seed, cfg=options.cfg,
                cache=cache)


def run(session, weights_dir, settings: dict, progress=None, cancel=None):
    """Generate along the session's path; returns engine.pipeline.GenerationResult."""
    if session.source is None:
        raise InputError("load a scene first")
    if session.path is None:
        raise InputError("there is no camera path yet: pick a preset or add keyframes")
    settings = dict(settings, trace=True)  # the model-inputs view shows what the model received
    zero_text = bool(settings.pop("zero_text", False))  # the no-text-encoder mode
    ok, message = weights_status(weights_dir, zero_text)
    if not ok:
        raise WeightsMissingError(message)
    image, depth, fit = session.source
    from studio import zerogpu
    from studio.handlers import scene_path

    if zerogpu.active():  # Spaces: the import-time models, in GPU calls that fit the budget
        return zerogpu.generate(image, scene_path(session), session.num_frames, depth=depth, fit=fit,
                                progress=progress, cancel=cancel, **settings)
    pipe = _pipeline(weights_dir, zero_text)
    return pipe.generate(image, scene_path(session), session.num_frames, depth=depth, fit=fit,
                         progress=progress, cancel=cancel, **settings)
