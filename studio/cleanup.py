"""Closing a session: its scene released, its folder removed, gradio's per-session data dropped and the memory
given back to the operating system.

gradio marks a closed tab's session (its heartbeat stopped) to be deleted an hour later, and even then keeps
the session's copy of every component's last value (the 3D view's figure among them) until 10 000 sessions
have come after it. The studio's unload event therefore closes the session itself, at once: the registry
entry (scene, folder) and gradio's record of it. Freed memory then goes back to the system: a full garbage
collection (scenes sit in reference cycles through their snapshots) and glibc's `malloc_trim`, which returns
free heap pages (numpy and torch buffers freed by many worker threads leave them in glibc's arenas).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os

from studio import files, sessions
from studio.sessions import CLOSED, EXPIRED

SESSION_TTL_ENV = "GEN3C_STUDIO_SESSION_TTL_S"
SESSION_TTL_S = 2 * 3600  # a session's state is dropped after this long without an edit


def session_ttl_s() -> float:
    raw = os.environ.get(SESSION_TTL_ENV, "").strip()
    ttl = float(raw) if raw else SESSION_TTL_S
    if not ttl > 0:
        raise ValueError(f"{SESSION_TTL_ENV} must be a positive number of seconds, got {raw!r}")
    return ttl


def close_session(key: str, reason: str = CLOSED, blocks=None) -> bool:
    """Release the scene and remove the folder of session `key`; with `blocks`, also drop gradio's record of
    the session. Returns whether the session was still open."""
    entry = sessions.REGISTRY.close(key, reason)
    if entry is not None:
        files.remove_session_folder(entry.folder)
    if blocks is not None:
        forget_gradio_session(blocks, key)
    if entry is not None or blocks is not None:
        release_memory()
    return entry is not None


def on_state_deleted(value) -> None:
    """gr.State's delete_callback: gradio dropped a session's state (expired, or the session was closed)."""
    key = getattr(value, "key", "")
    if key:
        sessions.REGISTRY.close(key, EXPIRED)  # a no-op when the unload already closed it
    files.remove_session_folder(getattr(value, "folder", ""))


def forget_gradio_session(blocks, key: str) -> None:
    """Run gradio's state deletion for `key` now (its delete callbacks included) and drop the session's record.
    gradio has no public call for this; with another gradio the session is left to gradio's own expiry."""
    holder = getattr(blocks, "state_holder", None)
    try:
        holder.delete_state(key)
        with holder.lock:
            holder.session_data.pop(key, None)
            holder.time_last_used.pop(key, None)
    except (AttributeError, KeyError, TypeError):
        pass


_libc = None


def release_memory() -> None:
    """A full garbage collection, then glibc's malloc_trim(0) where the C library has it."""
    global _libc
    gc.collect()
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        except OSError:
            _libc = False
    trim = getattr(_libc, "malloc_trim", None) if _libc else None
    if trim is not None:
        trim(0)
