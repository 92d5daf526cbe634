"""The studio's Blocks, one screen: tools in tabs and the status area (left), the 3D view, its toolbar and
the keyframe list (centre), the warped preview, frame slider, path video and coverage (right); generation
in a section below, collapsed until the weights exist. Every important component has a stable `elem_id`
(prefix `studio-`) for browser tests; `studio.wiring` connects the events.

Named API endpoints (gradio_client): /load_sample, /load_image, /set_preset, /add_keyframe, /render_frame,
/export_path, /new_path, /undo, /redo, ... /load_sample and /load_image return the scene status, the REFRESH
values (see `studio.events.REFRESH`: the first twelve as they always were), then the default preset's kind,
rotation, distance and corrected flag, and the sample shown.
"""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from studio import files, handlers, js
from studio import generate as gen
from studio.files import EXPORT_FORMATS
from studio.figures import DEFAULT_DETAIL, DETAIL_LEVELS

HELP_3D = ("**Drag** to orbit, **scroll** to zoom, **right-drag** to pan. **Add from view** inserts what the white "
           "frame shows after the selected keyframe; a click on the scene aims the selected keyframe there. "
           "Blue: keyframes (cyan: selected), purple: path, orange: current frame.")


def _sample_names() -> list[str]:
    try:
        from engine import samples

        return list(samples.list_samples())
    except Exception:  # noqa: BLE001 - the studio must open even if the samples module is broken
        return []


def _default_negative() -> str:
    try:
        from engine.pipeline import DEFAULT_NEGATIVE

        return DEFAULT_NEGATIVE
    except Exception:  # noqa: BLE001 - optional: the panel still works with an empty default
        return ""


def build_demo(weights_dir: str | None = None, default_sample: str | None = None) -> gr.Blocks:
    """Build the studio. `weights_dir`: GEN3C weights folder (None: $GEN3C_WEIGHTS / defaults)."""
    from engine import cameras
    from studio import cleanup, persist, wiring

    samples = _sample_names()
    default_sample = default_sample or (samples[0] if samples else None)
    ui = SimpleNamespace(samples=samples, default_sample=default_sample)

    with gr.Blocks(title="GEN3C Studio", delete_cache=(3600, 6 * 3600), fill_width=True) as demo:
        ui.session = gr.State(None, time_to_live=cleanup.session_ttl_s(), delete_callback=cleanup.on_state_deleted)
        ui.browser = gr.BrowserState({}, storage_key=persist.STORAGE_KEY, secret=persist.browser_secret())
        with gr.Row(elem_id="studio-header", equal_height=True):
            gr.Markdown("**GEN3C Studio**", elem_id="studio-title")
            ui.scene_status = gr.Markdown("No scene loaded.", elem_id="studio-scene-status")
        with gr.Row(equal_height=False, elem_id="studio-main"):
            # ---------------------------------------------------------------- left: tools + status
            with gr.Column(scale=0, min_width=330, elem_id="studio-left"):
                with gr.Tabs(elem_id="studio-tools"):
                    with gr.Tab("Path", id="path", elem_id="studio-tab-path"):
                        _path_tab(ui, cameras)
                    with gr.Tab("Scene", id="scene", elem_id="studio-tab-scene"):
                        _scene_tab(ui)
                    with gr.Tab("Files", id="files", elem_id="studio-tab-files"):
                        _files_tab(ui)
                    with gr.Tab("View", id="view", elem_id="studio-tab-view"):
                        _view_tab(ui)
                ui.status = gr.HTML('<div class="studio-msg studio-msg-none"></div>', elem_id="studio-status", apply_default_css=False,
                                    js_on_load=None)
            # ---------------------------------------------------------------- centre: 3D view + keyframes
            with gr.Column(scale=5, min_width=420, elem_id="studio-centre"):
                ui.plot = gr.Plot(show_label=False, elem_id=js.PLOT_ID)
                with gr.Row(elem_classes="studio-toolbar"):
                    ui.add_view_btn = gr.Button("Add from view", elem_id="studio-add-view", variant="primary",
                                                size="sm")
                    ui.set_view_btn = gr.Button("Set keyframe to view", elem_id="studio-set-view", size="sm")
                    ui.look_btn = gr.Button("Look through keyframe", elem_id="studio-look-through", size="sm")
                    ui.overview_btn = gr.Button("Overview", elem_id="studio-overview", size="sm")
                gr.Markdown(HELP_3D, elem_classes="studio-help", elem_id="studio-help-3d")
                with gr.Row(elem_classes="studio-list-bar", equal_height=True):
                    ui.path_info = gr.Markdown("No camera path.", elem_id="studio-path-summary")
                    ui.table_mode = gr.Radio(["look-at", "yaw/pitch/roll"], value="look-at", show_label=False,
                                             container=False, elem_id="studio-table-mode")
                ui.kf_list = gr.HTML('<div class="studio-list"></div>', elem_id="studio-keyframes", js_on_load=None,
                                    apply_default_css=False)
            # ---------------------------------------------------------------- right: preview
            with gr.Column(scale=3, min_width=330, elem_id="studio-right"):
                with gr.Tabs(elem_id="studio-preview-tabs"):
                    with gr.Tab("Preview", id="preview", elem_id="studio-tab-preview") as ui.preview_tab:
                        _preview_tab(ui)
                    with gr.Tab("What the model receives", id="model", elem_id="studio-tab-model") as ui.model_tab:
                        gr.Markdown("The cache buffers GEN3C is conditioned on at the current frame: each buffer's "
                                    "warped render and its mask (white = covered), with foreground masking as set "
                                    "under the preview. The first chunk has the seed image only (buffer 2 is zero); "
                                    "later chunks add the last generated frame. After a video is made, and until the path "
                                    "changes, it shows what that generation fed the model, chunk by chunk.",
                                    elem_classes="studio-help")
                        ui.model_gallery = gr.Gallery(show_label=False, columns=2, height=420, object_fit="contain",
                                                      elem_id="studio-model-inputs", interactive=False)
        _generate_section(ui)
        # hidden bridges between the browser (studio/web/studio.js) and Python
        ui.view_box = gr.Textbox("", visible="hidden", elem_id=js.VIEW_BOX_ID)
        ui.click_box = gr.Textbox("", visible="hidden", elem_id=js.CLICK_BOX_ID)
        ui.cams_box = gr.Textbox("", visible="hidden", elem_id=js.CAMERAS_BOX_ID)
        ui.list_box = gr.Textbox("", visible="hidden", elem_id=js.LIST_BOX_ID)
        ui.cell_box = gr.Textbox("", visible="hidden", elem_id=js.CELL_BOX_ID)
        ui.select_box = gr.Textbox("", visible="hidden", elem_id=js.SELECT_BOX_ID)
        ui.revision = gr.Number(0, visible="hidden", elem_id="studio-revision", precision=0)
        ui.selected = gr.Number(1, visible="hidden", precision=0, elem_id="studio-selected")
        # the keyframe table for API clients (the page shows the HTML list above)
        ui.table = gr.Dataframe(headers=handlers.TABLE_LOOK, datatype="number", visible=False,
                                elem_id="studio-keyframe-table")
        # /export_path for API clients: the path file itself (the page's Export button lists every export)
        ui.export_api_btn = gr.Button(visible=False)
        ui.export_api_file = gr.File(visible=False)
        ui.weights_state = gr.State(weights_dir)
        ui.model_open = gr.State(False)
        wiring.connect(demo, ui)
    return demo


def _path_tab(ui, cameras) -> None:
    with gr.Row(elem_classes="studio-tools"):
        ui.new_btn = gr.Button("New path", elem_id="studio-new-path", size="sm")
        ui.undo_btn = gr.Button("Undo", elem_id="studio-undo", size="sm", interactive=False)
        ui.redo_btn = gr.Button("Redo", elem_id="studio-redo", size="sm", interactive=False)
    with gr.Group(elem_id="studio-preset-group"):
        with gr.Row():
            ui.preset = gr.Dropdown(list(cameras.PRESETS), value="zoom_in", label="Preset", elem_id="studio-preset")
            ui.rotation = gr.Dropdown(list(cameras.ROTATION_MODES), value="center_facing", label="Rotation",
                                      elem_id="studio-rotation")
        with gr.Row():
            ui.distance = gr.Slider(0.05, 2.0, value=0.3, step=0.05, label="Distance", elem_id="studio-distance")
            ui.chunks = gr.Dropdown([(f"{120 * n + 1} frames ({n} chunk{'s' if n > 1 else ''})", n)
                                     for n in handlers.CHUNK_CHOICES], value=1, label="Length",
                                    elem_id="studio-chunks")
        with gr.Row(equal_height=True):
            ui.corrected = gr.Checkbox(False, label="Corrected look-at", elem_id="studio-corrected",
                                       info="fixes the official preset quirk")
            ui.preset_btn = gr.Button("Apply preset", elem_id="studio-apply-preset", variant="primary", size="sm")
    gr.Markdown("Keyframe", elem_classes="studio-subhead")
    with gr.Row(elem_classes="studio-tools"):
        ui.add_frame_btn = gr.Button("Add at frame", elem_id="studio-add-frame", size="sm")
        ui.dup_btn = gr.Button("Duplicate", elem_id="studio-duplicate", size="sm")
        ui.del_btn = gr.Button("Delete", elem_id="studio-delete", size="sm", variant="stop")
    with gr.Row(elem_classes="studio-tools"):
        ui.up_btn = gr.Button("Move up", elem_id="studio-move-up", size="sm")
        ui.down_btn = gr.Button("Move down", elem_id="studio-move-down", size="sm")
    with gr.Row():
        ui.interp = gr.Radio(["smooth", "linear"], value="smooth", label="Interpolation",
                             elem_id="studio-interpolation")
        ui.const_speed = gr.Checkbox(False, label="Constant speed", elem_id="studio-constant-speed")
    with gr.Accordion("Add a keyframe by numbers", open=False):
        ui.kf_pos = gr.Textbox("0 0 -0.3", label="Position x y z", elem_id="studio-kf-position")
        ui.kf_look = gr.Textbox("0 0 1", label="Look at x y z", elem_id="studio-kf-lookat")
        ui.kf_fov = gr.Textbox("", label="FOV y (deg; empty = scene's)", elem_id="studio-kf-fov",
                               placeholder="scene's FOV")
        ui.add_num_btn = gr.Button("Add keyframe", elem_id="studio-add-numbers", size="sm")
        gr.Markdown("World axes are the input camera's: x right, y down, z forward.", elem_classes="studio-help")


def _scene_tab(ui) -> None:
    with gr.Row(equal_height=True):
        ui.sample = gr.Dropdown(ui.samples, value=ui.default_sample, label="Sample scene", elem_id="studio-sample",
                                scale=3)
        ui.load_btn = gr.Button("Load", elem_id="studio-load-sample", scale=1, size="sm")
    ui.image = gr.Image(type="filepath", label="...or your image", elem_id="studio-image", height=100)
    with gr.Row(equal_height=True):
        ui.fit = gr.Radio(["crop", "pad"], value="crop", label="Fit to 1280x704", elem_id="studio-fit")
        # Textbox, not Number: gradio 6's Number shows an unset value as 0
        ui.fov = gr.Textbox("", label="FOV y (deg)", elem_id="studio-fov",
                            placeholder="from depth file / MoGe")
    ui.fit_preview = gr.Image(label="What the model will see", elem_id="studio-fit-preview", interactive=False,
                              height=110, visible=False, type="numpy", buttons=[])
    ui.fit_text = gr.Markdown("", elem_id="studio-fit-text", elem_classes="studio-help")
    ui.depth = gr.File(label="Depth file (optional: .npy/.npz/16-bit PNG/.exr)", height=70,
                       file_types=[".npy", ".npz", ".png", ".exr"], elem_id="studio-depth")
    ui.build_btn = gr.Button("Build scene from image", elem_id="studio-build-scene", variant="primary", size="sm")


def _files_tab(ui) -> None:
    ui.fmt = gr.Radio([(v, k) for k, v in EXPORT_FORMATS.items()], value="nerfstudio", label="Path format",
                      elem_id="studio-export-format")
    with gr.Row():
        ui.export_btn = gr.Button("Export path", elem_id="studio-export", size="sm", variant="primary")
        ui.ply_btn = gr.Button("Export point cloud (PLY)", elem_id="studio-export-ply", size="sm")
    gr.Markdown(f"Exports are kept while the session lasts, up to {files.export_quota_bytes() / 2 ** 20:.0f} MB "
                "per session: past that the oldest are removed first.", elem_id="studio-export-quota",
                elem_classes="studio-help")
    ui.export_file = gr.File(label="Downloads (newest first)", elem_id="studio-export-file", interactive=False,
                             file_count="multiple", height=120)
    ui.import_file = gr.File(label="Import path (.json nerfstudio/project, .npz GEN3C)", height=90,
                             file_types=[".json", ".npz"], elem_id="studio-import")


def _view_tab(ui) -> None:
    ui.style = gr.Radio([("coloured surface", "surface"), ("points", "points")], value="surface",
                        label="Scene drawn as", elem_id="studio-view-style")
    ui.detail = gr.Radio([(f"{k} ({v // 1000}k vertices)", k) for k, v in DETAIL_LEVELS.items()],
                         value=DEFAULT_DETAIL, label="3D detail", elem_id="studio-detail",
                         info="more detail is sharper but orbits slower without a GPU")


def _preview_tab(ui) -> None:
    ui.preview = gr.Image(show_label=False, elem_id="studio-preview", interactive=False, type="numpy",
                          format="jpeg", height=236, buttons=[])
    ui.frame = gr.Slider(0, 120, value=0, step=1, label="Frame", elem_id="studio-frame")
    gr.HTML('<div class="studio-timeline"></div>', elem_id="studio-timeline", js_on_load=None, apply_default_css=False)
    with gr.Row(equal_height=True, elem_classes="studio-preview-opts"):
        ui.masking = gr.Checkbox(True, label="Foreground masking (as the official GUI)",
                                 elem_id="studio-foreground-masking")
        ui.holes = gr.Checkbox(False, label="Show holes (magenta)", elem_id="studio-holes")
    ui.coverage = gr.Markdown("", elem_id="studio-coverage")
    ui.video = gr.Video(label="Path preview (176x320, loops)", elem_id="studio-preview-video", autoplay=True,
                        loop=True, height=150, interactive=False)
    ui.cov_plot = gr.Plot(show_label=False, elem_id="studio-coverage-plot")
    ui.cov_warn = gr.Markdown("", elem_id="studio-coverage-warning")


def _generate_section(ui) -> None:
    with gr.Accordion("Generate video (GEN3C)", open=False, elem_id="studio-generate-panel") as ui.gen_panel:
        ui.weights_md = gr.Markdown("", elem_id="studio-weights-status")
        with gr.Row():
            with gr.Column(scale=3):
                ui.prompt = gr.Textbox("", label="Prompt", lines=2, elem_id="studio-prompt")
                ui.negative = gr.Textbox(_default_negative(), label="Negative prompt", lines=2,
                                         elem_id="studio-negative-prompt")
                with gr.Row():
                    ui.steps = gr.Slider(1, 100, value=35, step=1, label="Steps", elem_id="studio-steps")
                    ui.guidance = gr.Slider(0, 15, value=1.0, step=0.5, label="Guidance", elem_id="studio-guidance")
                    ui.seed = gr.Number(1, label="Seed", precision=0, elem_id="studio-seed")
                    ui.cfg = gr.Radio(["official", "standard"], value="official", label="CFG policy",
                                      elem_id="studio-cfg")
                with gr.Row():
                    ui.no_text = gr.Checkbox(False, label="No text encoder (prompt ignored: zero prompt embeddings)",
                                             elem_id="studio-no-text-encoder")
                    ui.fast = gr.Dropdown(gen.fast_mode_choices(), value="none", label="Fast mode",
                                          info="approximate modes skip DiT work; their quality with the real "
                                               "weights is unmeasured", elem_id="studio-fast-mode")
                gr.Markdown("Frames follow the path length. 'official' CFG reproduces GEN3C's (guidance 1 = no "
                            "CFG); 'standard' is textbook classifier-free guidance. Foreground masking follows the "
                            "preview's toggle.", elem_classes="studio-help")
                with gr.Row():
                    ui.gen_btn = gr.Button("Generate", variant="primary", elem_id="studio-generate",
                                           interactive=False)
                    ui.cancel_btn = gr.Button("Cancel", variant="stop", elem_id="studio-cancel", interactive=False)
                ui.gen_status = gr.Markdown("", elem_id="studio-generate-status")
            with gr.Column(scale=3):
                ui.result = gr.Video(label="Result", elem_id="studio-result", height=260)
                ui.result_file = gr.File(label="Download result", elem_id="studio-result-file", interactive=False)


def launch_kwargs() -> dict:
    """Arguments for `demo.launch` that carry the page-level script, the CSS and the theme (gradio 6 takes
    them there)."""
    theme = gr.themes.Default(spacing_size="sm", text_size="sm", radius_size="sm")
    return dict(js=js.page_js(), css=js.page_css(), theme=theme)
