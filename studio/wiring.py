"""The studio's events: which component triggers which `studio.events` function with which inputs and
outputs (the components are built by `studio.layout`)."""
from __future__ import annotations

import gradio as gr

from studio import events, handlers, js, restore
from studio.messages import status_html, user_errors


def connect(demo: gr.Blocks, ui) -> None:
    refresh_out = [ui.session, ui.plot, ui.table, ui.frame, ui.selected, ui.path_info, ui.revision, ui.undo_btn,
                   ui.redo_btn, ui.interp, ui.const_speed, ui.chunks,
                   ui.cams_box, ui.list_box, ui.preview, ui.coverage, ui.browser, ui.status]
    assert len(refresh_out) == events.N_REFRESH
    scene_out = [ui.scene_status] + refresh_out + [ui.preset, ui.rotation, ui.distance, ui.corrected, ui.sample]
    ctx = [ui.frame, ui.table_mode]
    quiet = dict(show_progress="hidden")

    # browser side: the camera payload and the keyframe list are applied in the page
    ui.cams_box.change(None, [ui.cams_box], None, js=js.APPLY_CAMERAS_JS, api_name=False)
    ui.list_box.change(None, [ui.list_box], None, js=js.RENDER_LIST_JS, api_name=False)
    ui.frame.change(None, [ui.frame], None, js=js.HIGHLIGHT_JS, api_name=False)
    ui.look_btn.click(None, None, None, js=js.LOOK_THROUGH_JS, api_name=False)
    ui.overview_btn.click(None, None, None, js=js.OVERVIEW_JS, api_name=False)

    # scene
    ui.load_btn.click(events.load_sample, [ui.session, ui.sample], scene_out, api_name="load_sample")
    ui.build_btn.click(events.load_upload, [ui.session, ui.image, ui.depth, ui.fov, ui.fit, ui.weights_state],
                       scene_out, api_name="load_image", concurrency_id="gpu", concurrency_limit=1)
    for trigger in (ui.image.change, ui.fit.input):
        trigger(_fit_preview, [ui.image, ui.fit], [ui.fit_preview, ui.fit_text, ui.status], api_name=False, **quiet)
    demo.load(restore.on_page_load, [ui.session, ui.browser, ui.sample], scene_out + [ui.table_mode, ui.masking,
              ui.style, ui.detail, ui.holes], api_name=False)
    demo.load(events.weights_panel, [ui.weights_state], [ui.weights_md, ui.gen_btn, ui.gen_panel], api_name=False)
    demo.unload(events.make_unload(demo))

    # path edits
    ui.preset_btn.click(events.set_preset, [ui.session, ui.preset, ui.rotation, ui.distance, ui.chunks,
                                            ui.corrected] + ctx, refresh_out, api_name="set_preset", **quiet)
    ui.add_num_btn.click(events.add_keyframe, [ui.session, ui.kf_pos, ui.kf_look, ui.kf_fov] + ctx, refresh_out,
                         api_name="add_keyframe", **quiet)
    for button, fn, name in ((ui.add_view_btn, handlers.add_keyframe_from_view, "add_keyframe_from_view"),
                             (ui.set_view_btn, handlers.set_keyframe_to_view, "set_keyframe_to_view")):
        button.click(None, None, [ui.view_box], js=js.READ_VIEW_JS, api_name=False).then(
            events.edit(fn), [ui.session] + ctx + [ui.view_box], refresh_out, api_name=name, **quiet)
    simple = [(ui.add_frame_btn, handlers.add_keyframe_at_frame, [ui.frame], "add_keyframe_at_frame"),
              (ui.dup_btn, handlers.duplicate_keyframe, [], "duplicate_keyframe"),
              (ui.del_btn, handlers.delete_keyframe, [], "delete_keyframe"),
              (ui.undo_btn, handlers.undo, [], "undo"),
              (ui.redo_btn, handlers.redo, [], "redo"),
              (ui.new_btn, handlers.new_path, [], "new_path")]
    for button, fn, extra, name in simple:
        button.click(events.edit(fn), [ui.session] + ctx + extra, refresh_out, api_name=name, **quiet)
    ui.up_btn.click(events.edit(lambda s: handlers.move_keyframe(s, -1)), [ui.session] + ctx, refresh_out,
                    api_name="move_up", **quiet)
    ui.down_btn.click(events.edit(lambda s: handlers.move_keyframe(s, +1)), [ui.session] + ctx, refresh_out,
                      api_name="move_down", **quiet)
    for comp in (ui.interp, ui.const_speed):
        comp.input(events.edit(handlers.set_interpolation), [ui.session] + ctx + [ui.interp, ui.const_speed],
                   refresh_out, api_name=False, **quiet)
    ui.chunks.input(events.edit(handlers.set_length), [ui.session] + ctx + [ui.chunks], refresh_out,
                    api_name=False, **quiet)
    ui.table.input(events.edit(handlers.edit_table), [ui.session] + ctx + [ui.table, ui.table_mode], refresh_out,
                   api_name="edit_table", trigger_mode="always_last")
    ui.cell_box.change(events.edit_cell, [ui.session] + ctx + [ui.cell_box], refresh_out, api_name="edit_cell",
                      trigger_mode="always_last", **quiet)
    ui.select_box.change(events.select_from_list, [ui.session] + ctx + [ui.select_box], refresh_out,
                        api_name=False, **quiet)
    ui.table_mode.input(events.edit(lambda s: s), [ui.session] + ctx, refresh_out, api_name=False, **quiet)
    ui.click_box.change(events.edit(handlers.look_at_clicked_point), [ui.session] + ctx + [ui.click_box],
                        refresh_out, api_name=False, trigger_mode="always_last", **quiet)

    # 3D view and preview settings
    for comp, key in ((ui.style, "style"), (ui.detail, "detail")):
        comp.input(_view_setting(key), [ui.session, comp] + ctx, refresh_out, api_name=False)
    ui.holes.input(_view_setting("holes", figure=False), [ui.session, ui.holes] + ctx, refresh_out,
                   api_name=False, **quiet)
    ui.masking.input(events.edit(handlers.set_foreground_masking), [ui.session] + ctx + [ui.masking], refresh_out,
                     api_name="set_foreground_masking", **quiet)

    # preview
    ui.frame.change(events.render_frame, [ui.session, ui.frame, ui.holes], [ui.preview, ui.coverage],
                    trigger_mode="always_last", api_name="render_frame", **quiet)
    ui.revision.change(events.path_video, [ui.session, ui.frame], [ui.video, ui.cov_plot, ui.cov_warn],
                       trigger_mode="always_last", show_progress="minimal", api_name=False,
                       concurrency_id="preview-video")
    ui.model_tab.select(lambda: True, None, [ui.model_open], api_name=False).then(
        _model_inputs, [ui.session, ui.frame, ui.model_open], [ui.model_gallery], api_name=False)
    ui.preview_tab.select(lambda: False, None, [ui.model_open], api_name=False)
    ui.frame.change(_model_inputs, [ui.session, ui.frame, ui.model_open], [ui.model_gallery],
                    trigger_mode="always_last", api_name=False, **quiet)

    # files
    ui.export_btn.click(events.export_to_list, [ui.session, ui.fmt, ui.export_file], [ui.export_file, ui.status],
                        api_name=False)
    ui.export_api_btn.click(events.export_path, [ui.session, ui.fmt], [ui.export_api_file], api_name="export_path")
    ui.ply_btn.click(events.export_ply, [ui.session], [ui.export_file, ui.status], api_name="export_ply")
    ui.import_file.upload(events.import_path, [ui.session, ui.import_file] + ctx, refresh_out, api_name="import_path")

    # generate: one GPU job at a time across all sessions; Cancel only while one runs
    start = ui.gen_btn.click(lambda: gr.update(interactive=True), None, [ui.cancel_btn], api_name=False, **quiet)
    gen_event = start.then(
        events.make_generate(ui.weights_state.value), [ui.session, ui.prompt, ui.negative, ui.steps, ui.guidance,
                                                       ui.seed, ui.cfg, ui.no_text, ui.fast],
        [ui.result, ui.result_file, ui.gen_status], api_name="generate", concurrency_limit=1, concurrency_id="gpu")
    gen_event.then(lambda: gr.update(interactive=False), None, [ui.cancel_btn], api_name=False, **quiet)
    gen_event.then(_model_inputs, [ui.session, ui.frame, ui.model_open], [ui.model_gallery], api_name=False, **quiet)
    ui.cancel_btn.click(events.cancel_generation, [ui.session], [ui.gen_status, ui.cancel_btn], cancels=[gen_event],
                        api_name=False)


def _view_setting(key: str, figure: bool = True):
    """An event fn setting one of the session's 3D-view / preview settings (a new figure for the drawing)."""

    @user_errors(outputs=events.N_REFRESH, status=events.STATUS)
    @events.serialised
    def run(session, value, frame, table_mode):
        session = handlers.require_scene(session)
        view = dict(session.view, **{key: value})
        return events.refresh(session.replace(view=view), frame, table_mode, figure=figure)

    return run


@user_errors(outputs=3, status=2)
def _fit_preview(image, fit):
    if image is None:
        return gr.update(visible=False, value=None), "", status_html("")
    thumb, text = handlers.fit_preview(image, fit)
    return gr.update(visible=True, value=thumb), text, status_html("")


@user_errors
def _model_inputs(session, frame, is_open):
    from studio.model_inputs import model_input_views

    session = events.current(session)
    if not is_open or session is None or session.path is None:
        return gr.skip()
    return model_input_views(session, frame)
