() => {
  // GEN3C Studio's browser side (gradio runs this once per page, see studio/js.py). It keeps the 3D view a
  // single persistent plotly figure and edits it in place, and runs the keyframe list.
  if (window.studio) return;
  const CFG = window.__studioConfig || {};
  const PLOT = '#studio-3d .js-plotly-plot';
  const AXES = ['x', 'y', 'z'];
  const S = {cams: null, listKey: '', plot: null, home: null, highlightTimer: null, frame: 0, press: null};
  const gd = () => document.querySelector(PLOT);
  const plotly = () => window.Plotly;

  // ------------------------------------------------------------------------------------- hidden boxes
  const write = (id, payload) => {
    const box = document.querySelector(`#${id} textarea, #${id} input`);
    if (!box) return;
    const proto = box.tagName === 'TEXTAREA' ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
    Object.getOwnPropertyDescriptor(proto, 'value').set.call(box, payload);
    box.dispatchEvent(new Event('input', {bubbles: true}));
  };

  // ------------------------------------------------------------------- normalised <-> display units
  const boxOf = (scene) => {
    if (!scene || !scene.aspectratio) return null;
    const r = AXES.map((a) => scene[a + 'axis'] && scene[a + 'axis'].range);
    if (r.some((v) => !v || v.length !== 2)) return null;
    return {mid: r.map((v) => (v[0] + v[1]) / 2), unit: r.map((v, i) => (v[1] - v[0]) / scene.aspectratio[AXES[i]])};
  };
  const toDisplay = (p, box, dir) => AXES.map((a, i) => (dir ? 0 : box.mid[i]) + p[a] * box.unit[i]);
  const toNorm = (p, box, dir) => Object.fromEntries(AXES.map((a, i) => [a, (p[i] - (dir ? 0 : box.mid[i])) / box.unit[i]]));
  const liveCamera = (g) => {
    const sc = g._fullLayout.scene;
    let cam = (g.layout.scene && g.layout.scene.camera) || sc.camera;
    try { if (sc._scene && sc._scene.getCamera) cam = sc._scene.getCamera(); } catch (e) {}
    return {eye: cam.eye, center: cam.center, up: cam.up || {x: 0, y: 0, z: 1}};
  };

  // ------------------------------------------------------------ the frame of the keyframe camera
  // The view's own vertical FOV is chosen so that a keyframe's frame (its FOV, the model's aspect) fills
  // `frame_fill` of the plot; the frame is drawn over the view: what is inside it is what a keyframe added
  // from this view sees.
  const frameGeometry = (g) => {
    const c = S.cams;
    if (!c || !g) return null;
    const w = g.clientWidth, h = g.clientHeight;
    if (!w || !h) return null;
    const tf = Math.tan(c.fov * Math.PI / 360);
    const tv = Math.max(tf / c.frame_fill, tf * c.model_aspect * h / (c.frame_fill * w));
    const fh = h * tf / tv, fw = fh * c.model_aspect;
    return {fovy: 2 * Math.atan(tv), w, h, fw, fh, left: (w - fw) / 2, top: (h - fh) / 2};
  };
  const updateFrame = () => {
    const g = gd();
    const f = frameGeometry(g);
    if (!f) return;
    const sc = g._fullLayout && g._fullLayout.scene && g._fullLayout.scene._scene;
    if (sc && sc.glplot && Math.abs(sc.glplot.fovy - f.fovy) > 1e-9) {
      sc.glplot.fovy = f.fovy;
      sc.glplot.redraw();
    }
    let box = g.parentElement.querySelector('.studio-frame-box');
    if (!box) {
      box = document.createElement('div');
      box.className = 'studio-frame-box';
      box.innerHTML = '<span class="studio-frame-label"></span>';
      g.parentElement.style.position = 'relative';
      g.parentElement.appendChild(box);
    }
    Object.assign(box.style, {left: `${g.offsetLeft + f.left}px`, top: `${g.offsetTop + f.top}px`,
                              width: `${f.fw}px`, height: `${f.fh}px`});
    const n = S.cams.selected + 1;
    box.querySelector('.studio-frame-label').textContent =
      `frame of keyframe ${n > 0 ? n : ''} (${S.cams.fov.toFixed(1)}\u00b0): Add from view adds what is inside`;
  };

  // plotly saves the view into layout.scene.camera only when a drag ends over the plot and not after a scroll
  // zoom (plotly.js #5698); a figure update would then jump back to the saved view: save what is shown
  const syncCamera = (g) => {
    try {
      const live = liveCamera(g), saved = g.layout.scene && g.layout.scene.camera;
      const d = saved && saved.eye ? AXES.reduce((m, a) => Math.max(m, Math.abs(live.eye[a] - saved.eye[a]),
                                                                       Math.abs(live.center[a] - saved.center[a])), 0) : 1;
      if (d > 1e-9) return plotly().relayout(g, {'scene.camera': {eye: live.eye, center: live.center, up: live.up}});
    } catch (e) {}
    return Promise.resolve();
  };

  // -------------------------------------------------------------------- camera traces in place
  const revisionOf = (g) => (g && g.layout && g.layout.meta && g.layout.meta.studio_revision) || -1;
  const applyCameras = (text) => {
    if (text) {
      try { S.cams = JSON.parse(text); } catch (e) { return; }
    }
    const g = gd(), P = plotly();
    const c = S.cams;
    if (!c || !g || !P || !g._fullLayout || !g.data || !document.contains(g)) return;
    const data = g.data.slice();
    c.traces.forEach((t, k) => { data[c.first_trace + k] = t; });
    const layout = Object.assign({}, g.layout);
    layout.meta = Object.assign({}, layout.meta || {}, {studio_frames: c.frames, studio_revision: c.revision});
    g.__studioApplying = true;
    return Promise.resolve(syncCamera(g)).then(() => {
      layout.scene = g.layout.scene;
      return P.react(g, data, layout);
    }).then(() => {
      g.__studioApplying = false;
      // the payload's current-frame camera is the slider's frame unless the slider moved since: restyle only then
      const pts = c.frames && c.frames.points;
      g.__studioHighlighted = pts && c.frame === Math.round(Number(S.frame) || 0) ? pts[c.frame] : null;
      updateFrame();
      showFrame(S.frame, true);
    });
  };

  // ------------------------------------------------------------- current frame: 3D and coverage chart
  const highlightNow = () => {
    const g = gd(), P = plotly();
    const meta = g && g.layout && g.layout.meta && g.layout.meta.studio_frames;
    if (!meta || !P || !meta.points || !meta.points.length || !g._fullLayout || !document.contains(g)) return;
    const t = Math.max(0, Math.min(meta.points.length - 1, Math.round(Number(S.frame) || 0)));
    const p = meta.points[t];
    if (g.__studioHighlighted === p) return;
    const x = [], y = [], z = [];
    for (const i of meta.sequence) {
      x.push(i < 0 ? null : p[3 * i]); y.push(i < 0 ? null : p[3 * i + 1]); z.push(i < 0 ? null : p[3 * i + 2]);
    }
    g.__studioHighlighted = p;
    Promise.resolve(P.restyle(g, {x: [x], y: [y], z: [z]}, [meta.trace])).catch(() => {});
  };
  const markCoverage = () => {
    const c = document.querySelector('#studio-coverage-plot .js-plotly-plot'), P = plotly();
    if (!c || !P || !c._fullLayout || !c.layout || !c.layout.shapes || !document.contains(c)) return;
    const i = c.layout.shapes.findIndex((s) => s.name === 'current frame');
    if (i < 0) return;
    const f = Math.round(Number(S.frame) || 0);
    if (c.layout.shapes[i].x0 === f) return;
    Promise.resolve(P.relayout(c, {[`shapes[${i}].x0`]: f, [`shapes[${i}].x1`]: f})).catch(() => {});
  };
  const showFrame = (frame, now) => {
    S.frame = frame;
    markCoverage();
    // every restyle re-draws the whole WebGL scene: follow once the slider has rested
    clearTimeout(S.highlightTimer);
    if (now) highlightNow();
    else S.highlightTimer = setTimeout(highlightNow, CFG.highlight_idle_ms || 300);
    return [];
  };

  // ------------------------------------------------------------------------ what the view shows
  const readView = () => {
    const g = gd();
    if (!g || !g._fullLayout || !g._fullLayout.scene) return '';
    const sc = g._fullLayout.scene;
    let aspect = sc.aspectratio;
    try { if (sc._scene && sc._scene.glplot) aspect = sc._scene.glplot.getAspectratio(); } catch (e) {}
    const ranges = {x: sc.xaxis.range, y: sc.yaxis.range, z: sc.zaxis.range};
    return JSON.stringify({camera: liveCamera(g), ranges, aspect, fov: S.cams ? S.cams.fov : null, t: Date.now()});
  };
  const setCamera = (cam) => {
    const g = gd(), P = plotly();
    if (!g || !P || !cam) return [];
    P.relayout(g, {'scene.camera': {eye: cam.eye, center: cam.center, up: cam.up}});
    return [];
  };
  const rememberView = (g) => {
    try {
      const box = boxOf(g._fullLayout.scene), cam = liveCamera(g);
      const key = g.layout.meta && g.layout.meta.studio_scene;
      if (box && cam && cam.eye) S.lastView = {scene: key, eye: toDisplay(cam.eye, box), center: toDisplay(cam.center, box),
                                               up: toDisplay(cam.up, box, true)};
    } catch (e) {}
  };
  const lookThrough = () => {
    const c = S.cams;
    if (!c || c.selected < 0 || !c.views[c.selected]) return [];
    return setCamera(c.views[c.selected]);
  };
  const overview = () => setCamera(S.home);

  // --------------------------------------------------------------------- figure mounts (gradio)
  const loseContext = (el) => {
    for (const canvas of el.querySelectorAll('canvas')) {
      try {
        const ctx = canvas.getContext('webgl') || canvas.getContext('experimental-webgl');
        const ext = ctx && ctx.getExtension('WEBGL_lose_context');
        if (ext) ext.loseContext();
      } catch (e) {}
    }
  };
  const softwareGL = (() => {
    let answer = null;
    return () => {
      if (answer !== null) return answer;
      answer = false;
      try {
        const c = document.createElement('canvas');
        const ctx = c.getContext('webgl');
        const info = ctx && ctx.getExtension('WEBGL_debug_renderer_info');
        const name = info ? ctx.getParameter(info.UNMASKED_RENDERER_WEBGL) : '';
        answer = /swiftshader|llvmpipe|software/i.test(String(name));
        const ext = ctx && ctx.getExtension('WEBGL_lose_context');
        if (ext) ext.loseContext();
      } catch (e) {}
      return answer;
    };
  })();
  const onMount = (g) => {
    if (S.plot && S.plot !== g) {
      // free the replaced figure's WebGL context (gradio drops the element but not the context); later, so
      // that plotly's own pending resize of it has run
      const old = S.plot;
      setTimeout(() => {
        try { if (!document.contains(old)) { loseContext(old); plotly().purge(old); } } catch (e) {}
      }, 3000);
    }
    S.plot = g;
    S.home = g.layout && g.layout.scene && g.layout.scene.camera ? JSON.parse(JSON.stringify(g.layout.scene.camera)) : null;
    // a new figure of the same scene (its box grew): keep the view the user had
    const key = g.layout && g.layout.meta && g.layout.meta.studio_scene;
    const kept = S.lastView, box = boxOf(g.layout && g.layout.scene);
    if (kept && key && kept.scene === key && box) {
      setCamera({eye: toNorm(kept.eye, box), center: toNorm(kept.center, box), up: toNorm(kept.up, box, true)});
    }
    if (!g.__studioViewHook) {
      g.__studioViewHook = true;
      g.on('plotly_relayout', () => rememberView(g));
    }
    rememberView(g);
    const sc = g._fullLayout.scene && g._fullLayout.scene._scene;
    if (sc && sc.camera && CFG.rotate_speed) sc.camera.rotateSpeed = CFG.rotate_speed;
    if (!g.__studioResize && window.ResizeObserver) {
      g.__studioResize = new ResizeObserver(() => updateFrame());
      g.__studioResize.observe(g);
    }
    hookClicks(g);
    if (S.cams && S.cams.revision > revisionOf(g)) applyCameras();
    else { updateFrame(); showFrame(S.frame, true); }
  };
  const wrapReact = () => {
    const P = plotly();
    if (!P || !P.react || P.__studioWrapped) return;
    const react = P.react;
    P.react = function (g, data, layout, config) {
      const inPlot = g && g.closest && g.closest('#studio-3d');
      if (inPlot && !g.__studioApplying && softwareGL()) {
        config = Object.assign({}, config || {}, {plotGlPixelRatio: 1});  // half the pixels to rasterise on the CPU
        arguments[3] = config;
      }
      const out = react.apply(this, arguments);
      if (inPlot && !g.__studioApplying) Promise.resolve(out).then(() => onMount(g));
      return out;
    };
    P.__studioWrapped = true;
  };

  // ---------------------------------------------------------------- clicks on the scene (aim)
  // plotly's gl3d scene emits plotly_click when the button goes down over a point (and again on redraws
  // while it is held), so a point is only sent once the button comes up without having moved.
  const press = {down: null, moved: 0, pending: null, lastUp: null};
  window.addEventListener('pointerup', () => {
    if (!press.down) return;
    setTimeout(() => syncCamera(gd()), 250);  // a drag released outside the plot is not saved by plotly
    const click = press.moved <= (CFG.click_slop_px || 4);
    if (click && press.pending) write(CFG.click_box, press.pending);
    press.lastUp = {click, t: performance.now()};
    press.down = null; press.pending = null;
  }, true);
  const hookClicks = (g) => {
    if (!g.on || g.__studioHooks) return;
    g.__studioHooks = true;
    g.addEventListener('pointerdown', (e) => { press.down = [e.clientX, e.clientY]; press.moved = 0; press.pending = null; }, true);
    g.addEventListener('wheel', () => {
      clearTimeout(g.__studioWheel);
      g.__studioWheel = setTimeout(() => syncCamera(g), 300);
    }, {passive: true, capture: true});
    g.addEventListener('pointermove', (e) => {
      if (press.down) press.moved = Math.max(press.moved, Math.hypot(e.clientX - press.down[0], e.clientY - press.down[1]));
    }, true);
    g.on('plotly_click', (ev) => {
      const p = ev && ev.points && ev.points[0];
      if (!p || p.curveNumber !== 0) return;
      const payload = JSON.stringify({x: p.x, y: p.y, z: p.z, t: Date.now()});
      if (press.down) { press.pending = payload; return; }
      const up = press.lastUp;
      press.lastUp = null;
      if (up && up.click && performance.now() - up.t < (CFG.click_late_ms || 2000)) write(CFG.click_box, payload);
    });
  };

  // ---------------------------------------------------------------------------- keyframe list
  const LIST = '#studio-keyframes';
  const NOTE = {
    'look-at': 'Look-at mode: moving a camera keeps it aimed at its look point. hold: frames to stay; ease: slow in/out.',
    'yaw/pitch/roll': 'Degrees: yaw turns right, pitch looks up, roll tilts. hold: frames to stay; ease: slow in/out.',
  };
  const fmt = (v) => (typeof v === 'number' || typeof v === 'string' ? String(v) : '');
  const renderList = (text) => {
    let d;
    try { d = JSON.parse(text); } catch (e) { return []; }
    const root = document.querySelector(`${LIST} .studio-list`);
    if (!root) { setTimeout(() => renderList(text), 100); return []; }
    const key = JSON.stringify([d.headers, d.rows.length]);
    if (key !== S.listKey) {
      S.listKey = key;
      const head = d.headers.map((h) => `<th role="columnheader">${h}</th>`).join('');
      const eases = (d.eases || []).map((e) => `<option value="${e}">${e.replace(/_/g, ' ')}</option>`).join('');
      const body = d.rows.map((r, i) => `<tr role="row" data-row="${i}">` +
        `<td role="gridcell"><button class="studio-kf-num" data-row="${i}" title="select keyframe ${i + 1}">${i + 1}</button></td>` +
        d.headers.slice(1).map((h) => (h === 'ease'
          ? `<td role="gridcell"><select class="studio-kf-cell studio-kf-ease" data-row="${i}" data-col="ease" ` +
            `aria-label="keyframe ${i + 1} ease">${eases}</select></td>`
          : `<td role="gridcell"><input class="studio-kf-cell" data-row="${i}" data-col="${h}" ` +
            `aria-label="keyframe ${i + 1} ${h}" inputmode="${h === 'hold' ? 'numeric' : 'decimal'}" spellcheck="false" ` +
            `autocomplete="off"></td>`)).join('') +
        '</tr>').join('');
      root.innerHTML = `<div class="studio-list-note"></div><div class="studio-list-scroll">` +
        `<table role="grid"><thead><tr role="row">${head}</tr></thead><tbody>${body}</tbody></table></div>`;
    }
    root.querySelector('.studio-list-note').textContent = d.rows.length ? (NOTE[d.mode] || '') :
      'No keyframes yet: pick a preset and Apply, or New path.';
    root.dataset.mode = d.mode;
    root.querySelectorAll('tr[data-row]').forEach((tr) => {
      const i = Number(tr.dataset.row);
      tr.classList.toggle('studio-selected', i === d.selected);
      tr.querySelectorAll('.studio-kf-cell').forEach((inp) => {
        const v = d.rows[i][d.headers.indexOf(inp.dataset.col)];
        inp.dataset.value = fmt(v);
        if (!(document.activeElement === inp && inp.dataset.dirty === '1')) {
          const was = inp.value;
          inp.value = fmt(v); inp.dataset.dirty = '';
          if (document.activeElement === inp && inp.select && was !== inp.value) inp.select();  // retyping replaces
        }
        inp.classList.remove('studio-pending');
      });
    });
    const sel = root.querySelector('tr.studio-selected');
    if (sel && d.selected !== S.listSelected) {
      S.listSelected = d.selected;
      const sc = root.querySelector('.studio-list-scroll');
      const top = sel.offsetTop - sc.querySelector('thead').offsetHeight;
      if (top < sc.scrollTop || top + sel.offsetHeight > sc.scrollTop + sc.clientHeight) sc.scrollTop = Math.max(0, top - 8);
    }
    renderTimeline(d);
    return [];
  };
  // the keyframes on the clip's frames: where each is reached, its hold; a click selects it and goes there
  const renderTimeline = (d) => {
    const root = document.querySelector('#studio-timeline .studio-timeline');
    if (!root) return;
    const t = d.timeline;
    if (!t) { root.innerHTML = '<span class="studio-timeline-empty">one keyframe: no motion yet</span>'; return; }
    const pct = (f) => (100 * f / Math.max(t.frames - 1, 1)).toFixed(3);
    root.innerHTML = t.at.map((f, i) => {
      const hold = t.hold[i] ? `<div class="studio-tl-hold" style="left:${pct(f)}%;width:${pct(t.hold[i])}%"></div>` : '';
      const cls = i === d.selected ? ' studio-tl-selected' : '';
      return hold + `<button class="studio-tl-key${cls}" style="left:${pct(f)}%" data-row="${i}" data-frame="${Math.round(f)}" ` +
        `title="keyframe ${i + 1} at frame ${Math.round(f)}${t.hold[i] ? `, held ${t.hold[i]} frames` : ''}">${i + 1}</button>`;
    }).join('');
  };
  const setFrame = (f) => {
    const r = document.querySelector('#studio-frame input[type=range]');
    if (!r) return;
    Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(r, String(f));
    r.dispatchEvent(new Event('input', {bubbles: true}));
    r.dispatchEvent(new Event('change', {bubbles: true}));
  };
  const commit = (inp) => {
    if (inp.value.trim() === inp.dataset.value) { inp.dataset.dirty = ''; inp.value = inp.dataset.value; return; }
    inp.dataset.dirty = '';
    inp.classList.add('studio-pending');
    write(CFG.cell_box, JSON.stringify({row: Number(inp.dataset.row), column: inp.dataset.col,
                                        value: inp.value.trim(), t: Date.now()}));
  };
  document.addEventListener('focusin', (e) => {
    const inp = e.target;
    if (inp.classList && inp.classList.contains('studio-kf-cell') && inp.select) setTimeout(() => inp.select(), 0);  // typing replaces
  });
  document.addEventListener('dblclick', (e) => {
    // a double click edits the number in place (the caret where clicked) instead of replacing it
    if (e.target.classList && e.target.classList.contains('studio-kf-cell')) e.target.dataset.dirty = '1';
  });
  document.addEventListener('input', (e) => {
    if (e.target.classList && e.target.classList.contains('studio-kf-cell')) e.target.dataset.dirty = '1';
  });
  document.addEventListener('change', (e) => {
    if (e.target.classList && e.target.classList.contains('studio-kf-cell')) commit(e.target);
  });
  document.addEventListener('keydown', (e) => {
    const inp = e.target;
    if (!inp.classList || !inp.classList.contains('studio-kf-cell')) return;
    if (!inp.select) return;  // the ease menu: the browser's own keys
    // as in a spreadsheet, the first key typed into a cell replaces its number
    if (inp.dataset.dirty !== '1' && e.key.length === 1 && !e.ctrlKey && !e.metaKey && !e.altKey) inp.select();
    if (e.key === 'Escape') { inp.value = inp.dataset.value; inp.dataset.dirty = ''; inp.select(); e.preventDefault(); }
    if (e.key === 'Enter') {  // commit, stay in the cell (Tab moves on)
      e.preventDefault();
      if (inp.dataset.dirty === '1') commit(inp);
      inp.select();
    }
  });
  document.addEventListener('click', (e) => {
    const b = e.target.closest && e.target.closest('.studio-kf-num');
    if (b) write(CFG.select_box, JSON.stringify({index: Number(b.dataset.row), t: Date.now()}));
    const k = e.target.closest && e.target.closest('.studio-tl-key');
    if (k) {
      write(CFG.select_box, JSON.stringify({index: Number(k.dataset.row), t: Date.now()}));
      setFrame(Number(k.dataset.frame));
    }
  });

  // ------------------------------------------------------------------ path preview video refresh
  const watchVideo = () => {
    const v = document.querySelector('#studio-preview-video video');
    if (!v || v.__studioWatched) return;
    v.__studioWatched = true;
    v.muted = true; v.loop = true;
    v.addEventListener('loadeddata', () => {
      v.muted = true; v.loop = true;
      const p = v.play(); if (p && p.catch) p.catch(() => {});
      const wrap = v.closest('#studio-preview-video');
      if (wrap) { wrap.classList.remove('studio-flash'); void wrap.offsetWidth; wrap.classList.add('studio-flash'); }
    });
  };

  const tick = () => {
    wrapReact();
    watchVideo();
    const g = gd();
    if (g && g !== S.plot && g._fullLayout && g._fullLayout.scene) onMount(g);
  };
  window.studio = {applyCameras, showFrame, readView, lookThrough, overview, renderList, updateFrame,
                   frameGeometry: () => frameGeometry(gd()), state: S};
  tick();
  new MutationObserver(tick).observe(document.body, {childList: true, subtree: true});
  setInterval(tick, 500);
}
