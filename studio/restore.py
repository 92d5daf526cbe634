"""Page load: restore what the browser kept (`studio.persist`), else open the default sample."""
from __future__ import annotations

import gradio as gr

from engine.errors import InputError
from studio import events, handlers, persist


def on_page_load(session, state, sample, request: gr.Request = None):
    """Scene values (see `events.scene_values`), then the table mode, foreground masking, the 3D view's style
    and detail, and the show-holes toggle, as restored."""
    session = events.ensure(session, request)
    saved = persist.read_state(state)
    notes = []
    if saved is None:
        session = _default_scene(session, sample)
        return events.scene_values(session) + ("look-at", True, "surface", "standard", False)
    ref = saved["scene"]
    restored = None
    if "upload" in ref:
        restored = handlers.restore_upload(session, ref["upload"])
        if restored is None:
            notes.append("Your uploaded image is no longer on the server: upload it again (Scene tab). "
                         "Your camera path was kept, shown on a sample scene.")
    elif "sample" in ref:
        try:
            restored = handlers.load_sample(session, ref["sample"])
        except InputError:
            notes.append(f"The sample {ref['sample']!r} no longer exists; a default sample is shown.")
    session = restored or _default_scene(session, sample)
    if not saved["masking"]:
        session = handlers.set_foreground_masking(session, False)
    session = session.replace(view=dict(saved["view"], holes=False))
    if saved["path"] is not None:
        path = saved["path"]
        targets = {}
        for kf, target in zip(path.keyframes, saved["targets"] or []):
            if target is not None:
                targets[kf] = target
        selected = min(saved["selected"], len(path.keyframes) - 1)
        session = session.with_path(path, record=False, num_frames=saved["frames"], selected=selected,
                                    targets=targets)
        notes.insert(0, "Restored your camera path from this browser.")
    elif saved["path_error"]:
        notes.append(f"Your saved camera path could not be read ({saved['path_error']}); the default is shown.")
    level = "warning" if len(notes) > 1 else "info"
    return (events.scene_values(session, saved["table_mode"], " ".join(notes), level)
            + (saved["table_mode"], saved["masking"], saved["view"]["style"], saved["view"]["detail"], False))


def _default_scene(session, sample):
    names = _sample_names()
    name = sample if sample in names else (names[0] if names else None)
    if name is None:
        return session
    return handlers.load_sample(session, name)


def _sample_names() -> list[str]:
    from engine import samples

    return list(samples.list_samples())
