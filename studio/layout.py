"""The studio's Blocks: scene + path tools (left), 3D view + keyframes (centre), preview (right),
generation below. Every important component has a stable `elem_id` (prefix `studio-`) for browser tests.

Named API endpoints (gradio_client): /load_sample, /set_preset, /add_keyframe, /render_frame, /export_path.
/load_sample and /load_image return the scene status, the REFRESH values (see `events.refresh`), then the
default preset's kind, rotation, distance and corrected flag (the new path's preset controls).
"""
from __future__ import annotations

import functools

import gradio as gr

from studio import events, files, handlers, js
from studio.files import EXPORT_FORMATS

CSS = """
#studio-3d {min-height: 520px;}
.studio-help {font-size: 0.85em; opacity: 0.8;}
.studio-tools button {min-width: 0 !important;}
/* keyframe table: all 8 columns (down to "fov") fit the centre column of a 1280 px window; wider numbers
   scroll horizontally inside the table */
#studio-keyframes table {font-size: 0.82em;}
#studio-keyframes th, #studio-keyframes td {padding-left: 3px !important; padding-right: 3px !important;
  min-width: 0 !important;}
#studio-keyframes .cell-wrap, #studio-keyframes .header-content {padding: 0 !important; min-width: 0 !important;}
"""

HELP_3D = ("Drag to orbit, scroll to zoom, right-drag to pan. **Add from 3D view** adds the camera you see "
           "(position, direction, roll; FOV = the scene's). Click a point of the cloud to aim the selected "
           "keyframe at it. Numbered blue frustums: keyframes; cyan: selected; orange: current frame; "
           "purple: the path.")


def _sample_names() -> list[str]:
    try:
        from engine import samples

        return list(samples.list_samples())
    except Exception:  # noqa: BLE001 - the studio must open even if the samples module is broken
        return []


def build_demo(weights_dir: str | None = None, default_sample: str | None = None) -> gr.Blocks:
    """Build the studio. `weights_dir`: GEN3C weights folder (None: $GEN3C_WEIGHTS / defaults)."""
    from engine import cameras

    samples = _sample_names()
    default_sample = default_sample or (samples[0] if samples else None)

    with gr.Blocks(title="GEN3C Studio", delete_cache=(3600, 6 * 3600)) as demo:
        session = gr.State(None, delete_callback=_drop_session)
        gr.Markdown("## GEN3C Studio\nOne image -> 3D point cloud -> a camera path -> a camera-controlled video. "
                    "Previews are the same warped renders the model is conditioned on, at lower resolution.")
        with gr.Row(equal_height=False):
            # ---------------------------------------------------------------- left: scene + path tools
            with gr.Column(scale=3, min_width=280):
                with gr.Accordion("1. Scene", open=True):
                    with gr.Row():
                        sample = gr.Dropdown(samples, value=default_sample, label="Sample scene",
                                             elem_id="studio-sample", scale=3)
                        load_btn = gr.Button("Load", elem_id="studio-load-sample", scale=1)
                    image = gr.Image(type="filepath", label="...or your image", elem_id="studio-image", height=140)
                    depth = gr.File(label="Depth file (optional: .npy/.npz/16-bit PNG/.exr)",
                                    file_types=[".npy", ".npz", ".png", ".exr"], elem_id="studio-depth")
                    with gr.Row():
                        # Textbox, not Number: gradio 6's Number shows an unset value as 0
                        fov = gr.Textbox("", label="FOV y (deg; depth file without K)", elem_id="studio-fov",
                                         placeholder="empty: from the depth file / MoGe")
                        fit = gr.Radio(["crop", "pad"], value="crop", label="Fit to 1280x704", elem_id="studio-fit")
                    build_btn = gr.Button("Build scene from image", elem_id="studio-build-scene")
                    scene_status = gr.Markdown("No scene loaded.", elem_id="studio-scene-status")
                with gr.Accordion("2. Camera path", open=True):
                    with gr.Row():
                        preset = gr.Dropdown(list(cameras.PRESETS), value="zoom_in", label="Preset",
                                             elem_id="studio-preset")
                        rotation = gr.Dropdown(list(cameras.ROTATION_MODES), value="center_facing",
                                               label="Rotation", elem_id="studio-rotation")
                    with gr.Row():
                        distance = gr.Slider(0.05, 2.0, value=0.3, step=0.05, label="Distance",
                                             elem_id="studio-distance")
                        chunks = gr.Dropdown([(f"{120 * n + 1} frames ({n} chunk{'s' if n > 1 else ''})", n)
                                              for n in handlers.CHUNK_CHOICES], value=1, label="Length",
                                             elem_id="studio-chunks")
                    with gr.Row():
                        corrected = gr.Checkbox(False, label="Corrected look-at (fix official quirk)",
                                                elem_id="studio-corrected")
                        preset_btn = gr.Button("Apply preset", elem_id="studio-apply-preset", variant="primary")
                    with gr.Row(elem_classes="studio-tools"):
                        add_view_btn = gr.Button("Add from 3D view", elem_id="studio-add-view", size="sm")
                        add_frame_btn = gr.Button("Add at current frame", elem_id="studio-add-frame", size="sm")
                    with gr.Row(elem_classes="studio-tools"):
                        dup_btn = gr.Button("Duplicate", elem_id="studio-duplicate", size="sm")
                        del_btn = gr.Button("Delete", elem_id="studio-delete", size="sm", variant="stop")
                        up_btn = gr.Button("Up", elem_id="studio-move-up", size="sm")
                        down_btn = gr.Button("Down", elem_id="studio-move-down", size="sm")
                    with gr.Row(elem_classes="studio-tools"):
                        undo_btn = gr.Button("Undo", elem_id="studio-undo", size="sm", interactive=False)
                        redo_btn = gr.Button("Redo", elem_id="studio-redo", size="sm", interactive=False)
                    with gr.Row():
                        interp = gr.Radio(["smooth", "linear"], value="smooth", label="Interpolation",
                                          elem_id="studio-interpolation")
                        const_speed = gr.Checkbox(False, label="Constant speed", elem_id="studio-constant-speed")
                    with gr.Accordion("Add a keyframe by numbers", open=False):
                        kf_pos = gr.Textbox("0 0 -0.3", label="Position x y z", elem_id="studio-kf-position")
                        kf_look = gr.Textbox("0 0 1", label="Look at x y z", elem_id="studio-kf-lookat")
                        kf_fov = gr.Textbox("", label="FOV y (deg; empty = scene's)", elem_id="studio-kf-fov",
                                            placeholder="scene's FOV")
                        add_num_btn = gr.Button("Add keyframe", elem_id="studio-add-numbers", size="sm")
                        gr.Markdown("World axes are the input camera's: x right, y down, z forward.",
                                    elem_classes="studio-help")
                with gr.Accordion("3. Import / export", open=False):
                    fmt = gr.Radio([(v, k) for k, v in EXPORT_FORMATS.items()], value="nerfstudio",
                                   label="Path format", elem_id="studio-export-format")
                    with gr.Row():
                        export_btn = gr.Button("Export path", elem_id="studio-export", size="sm")
                        ply_btn = gr.Button("Export point cloud (PLY)", elem_id="studio-export-ply", size="sm")
                    export_file = gr.File(label="Download", elem_id="studio-export-file", interactive=False)
                    import_file = gr.File(label="Import path (.json nerfstudio/project, .npz GEN3C)",
                                          file_types=[".json", ".npz"], elem_id="studio-import")
            # ---------------------------------------------------------------- centre: 3D view + keyframes
            with gr.Column(scale=5, min_width=420):
                plot = gr.Plot(label="3D view", elem_id=js.PLOT_ID)
                gr.Markdown(HELP_3D, elem_classes="studio-help")
                with gr.Row():
                    selected = gr.Number(1, label="Selected keyframe", precision=0, minimum=1,
                                         elem_id="studio-selected", scale=1)
                    table_mode = gr.Radio(["look-at", "yaw/pitch/roll"], value="look-at", label="Table shows",
                                          elem_id="studio-table-mode", scale=2)
                path_info = gr.Markdown("No camera path.", elem_id="studio-path-summary")
                table = gr.Dataframe(headers=handlers.TABLE_LOOK, datatype="number", interactive=True,
                                     label="Keyframes (edit numbers; click a row to select)",
                                     elem_id="studio-keyframes", max_height=260)
            # ---------------------------------------------------------------- right: preview
            with gr.Column(scale=4, min_width=320):
                preview = gr.Image(label="Warped preview (352x640)", elem_id="studio-preview", interactive=False,
                                   type="numpy", format="jpeg")
                frame = gr.Slider(0, 120, value=0, step=1, label="Frame", elem_id="studio-frame")
                with gr.Row():
                    holes = gr.Checkbox(False, label="Show holes (magenta)", elem_id="studio-holes")
                    coverage = gr.Markdown("", elem_id="studio-coverage")
                video = gr.Video(label="Path preview (176x320)", elem_id="studio-preview-video", autoplay=False,
                                 loop=True, height=200)
                cov_plot = gr.Plot(label="Coverage", elem_id="studio-coverage-plot")
                cov_warn = gr.Markdown("", elem_id="studio-coverage-warning")
        # -------------------------------------------------------------------- generate
        with gr.Accordion("4. Generate video (GEN3C)", open=True):
            weights_md = gr.Markdown("", elem_id="studio-weights-status")
            with gr.Row():
                with gr.Column(scale=3):
                    prompt = gr.Textbox("", label="Prompt", lines=2, elem_id="studio-prompt")
                    negative = gr.Textbox(_default_negative(), label="Negative prompt", lines=2,
                                          elem_id="studio-negative-prompt")
                    with gr.Row():
                        steps = gr.Slider(1, 100, value=35, step=1, label="Steps", elem_id="studio-steps")
                        guidance = gr.Slider(0, 15, value=1.0, step=0.5, label="Guidance", elem_id="studio-guidance")
                        seed = gr.Number(1, label="Seed", precision=0, elem_id="studio-seed")
                        cfg = gr.Radio(["official", "standard"], value="official", label="CFG policy",
                                       elem_id="studio-cfg")
                    gr.Markdown("Frames follow the path length above. 'official' CFG reproduces GEN3C's "
                                "(guidance 1 = no CFG); 'standard' is textbook classifier-free guidance.",
                                elem_classes="studio-help")
                    with gr.Row():
                        gen_btn = gr.Button("Generate", variant="primary", elem_id="studio-generate",
                                            interactive=False)
                        cancel_btn = gr.Button("Cancel", variant="stop", elem_id="studio-cancel")
                    gen_status = gr.Markdown("", elem_id="studio-generate-status")
                with gr.Column(scale=3):
                    result = gr.Video(label="Result", elem_id="studio-result", height=260)
                    result_file = gr.File(label="Download result", elem_id="studio-result-file", interactive=False)
        # hidden bridges for the JS hooks and the preview-video trigger
        view_box = gr.Textbox("", visible="hidden", elem_id=js.VIEW_BOX_ID)
        click_box = gr.Textbox("", visible="hidden", elem_id=js.CLICK_BOX_ID)
        revision = gr.Number(0, visible="hidden", elem_id="studio-revision", precision=0)
        weights_state = gr.State(weights_dir)

        refresh_out = [session, plot, table, frame, selected, path_info, revision, undo_btn, redo_btn, interp,
                       const_speed, chunks]
        # a new scene starts on the default preset: its controls show it too (appended after refresh_out)
        scene_out = [scene_status] + refresh_out + [preset, rotation, distance, corrected]
        ctx = [frame, table_mode]
        frame_io = dict(fn=events.render_frame, inputs=[session, frame, holes], outputs=[preview, coverage],
                        show_progress="hidden")

        def after(ev):
            return ev.then(**frame_io, api_name=False)

        # scene
        after(load_btn.click(_show_default_preset(events.load_sample), [session, sample], scene_out,
                             api_name="load_sample"))
        after(build_btn.click(_show_default_preset(events.load_upload), [session, image, depth, fov, fit,
                                                                         weights_state],
                              scene_out, api_name="load_image", concurrency_id="gpu", concurrency_limit=1))
        if default_sample:
            after(demo.load(_show_default_preset(events.load_sample), [session, sample], scene_out, api_name=False))
        demo.load(events.weights_panel, [weights_state], [weights_md, gen_btn], api_name=False)
        demo.unload(events.on_unload)

        # path edits
        after(preset_btn.click(events.set_preset, [session, preset, rotation, distance, chunks, corrected] + ctx,
                               refresh_out, api_name="set_preset"))
        after(add_num_btn.click(events.add_keyframe, [session, kf_pos, kf_look, kf_fov] + ctx, refresh_out,
                                api_name="add_keyframe"))
        after(add_view_btn.click(None, None, [view_box], js=js.READ_VIEW_JS).then(
            events.edit(handlers.add_keyframe_from_view), [session] + ctx + [view_box], refresh_out,
            api_name="add_keyframe_from_view"))
        simple = [(add_frame_btn, handlers.add_keyframe_at_frame, [frame], "add_keyframe_at_frame"),
                  (dup_btn, handlers.duplicate_keyframe, [], "duplicate_keyframe"),
                  (del_btn, handlers.delete_keyframe, [], "delete_keyframe"),
                  (undo_btn, handlers.undo, [], "undo"),
                  (redo_btn, handlers.redo, [], "redo")]
        for button, fn, extra, name in simple:
            after(button.click(events.edit(fn), [session] + ctx + extra, refresh_out, api_name=name))
        up_fn = events.edit(lambda s: handlers.move_keyframe(s, -1))
        down_fn = events.edit(lambda s: handlers.move_keyframe(s, +1))
        after(up_btn.click(up_fn, [session] + ctx, refresh_out, api_name="move_up"))
        after(down_btn.click(down_fn, [session] + ctx, refresh_out, api_name="move_down"))
        for comp in (interp, const_speed):
            after(comp.input(events.edit(handlers.set_interpolation), [session] + ctx + [interp, const_speed],
                             refresh_out, api_name=False))
        after(chunks.input(events.edit(handlers.set_length), [session] + ctx + [chunks], refresh_out,
                           api_name=False))
        after(table.input(events.edit(handlers.edit_table), [session] + ctx + [table, table_mode], refresh_out,
                          api_name="edit_table", trigger_mode="always_last"))
        table.select(events.select_row, [session] + ctx, refresh_out, api_name=False)
        selected.submit(events.select_number, [session, selected] + ctx, refresh_out, api_name=False)
        table_mode.input(events.edit(lambda s: s), [session] + ctx, refresh_out, api_name=False)
        after(click_box.change(events.edit(handlers.look_at_clicked_point), [session] + ctx + [click_box],
                              refresh_out, api_name=False, trigger_mode="always_last"))

        # preview
        frame.change(**frame_io, trigger_mode="always_last", api_name="render_frame")
        holes.input(**frame_io, api_name=False)
        frame.change(None, [frame], None, js=js.HIGHLIGHT_JS, api_name=False)  # 3D highlight, in the browser
        revision.change(events.path_video, [session, holes], [video, cov_plot, cov_warn], trigger_mode="always_last",
                        show_progress="minimal", api_name=False, concurrency_id="preview-video")

        # files
        export_btn.click(events.export_path, [session, fmt], [export_file], api_name="export_path")
        ply_btn.click(events.export_ply, [session], [export_file], api_name="export_ply")
        after(import_file.upload(events.import_path, [session, import_file] + ctx, refresh_out,
                                 api_name="import_path"))

        # generate: one GPU job at a time across all sessions
        gen_event = gen_btn.click(
            events.make_generate(weights_dir), [session, prompt, negative, steps, guidance, seed, cfg],
            [result, result_file, gen_status], api_name="generate", concurrency_limit=1, concurrency_id="gpu")
        cancel_btn.click(events.cancel_generation, [session], [gen_status], cancels=[gen_event], api_name=False)
    return demo


def _show_default_preset(load_fn):
    """`load_fn` (scene status + REFRESH values) followed by the default preset's kind, rotation, distance and
    corrected flag, which the new scene's path was built with; a skipped (failed) load stays skipped."""

    @functools.wraps(load_fn)  # keeps the signature: gradio still injects gr.Request / gr.Progress
    def run(*args, **kwargs):
        out = load_fn(*args, **kwargs)
        if not isinstance(out, tuple):
            return out
        d = handlers.DEFAULT_PRESET
        return out + (d["kind"], d["rotation"], d["distance"], d["corrected"])

    return run


def _drop_session(value) -> None:
    """gradio dropped a session's state: remove its output folder."""
    if value is not None and getattr(value, "folder", ""):
        files.remove_session_folder(value.folder)


def _default_negative() -> str:
    try:
        from engine.pipeline import DEFAULT_NEGATIVE

        return DEFAULT_NEGATIVE
    except Exception:  # noqa: BLE001 - optional: the panel still works with an empty default
        return ""


def launch_kwargs() -> dict:
    """Arguments for `demo.launch` that carry the page-level JS hook and CSS (gradio 6 takes them there)."""
    return dict(js=js.CLICK_HOOK_JS, css=CSS)
