"""What the studio keeps per session next to gradio's state: the heavy scene data (under a cap on how many
scenes are held at once), the session's output folder and the lock that serialises its edits.

gradio keeps one `studio.state.Session` per browser tab (and per gradio_client session) in `gr.State`; every
snapshot of one session shares a `Held` (its scene, preview caches and source image) and a `Latest` (its
newest revision and snapshot, and its edit lock). The `Registry` maps gradio's session hash to them, so a
tab closed (gradio's unload event), a state expired (`gr.State(time_to_live=...)`) or a session pushed out by
the cap can drop its scene at once, whatever snapshots are still referenced.

The cap drops the least recently used session's scene rather than refusing a new one: a tab left open
overnight must not lock the studio for everyone else, and the dropped session loses nothing it cannot get
back (its camera path is kept, and a page reload restores the scene from the browser's state). That
session's next action says so.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

MAX_SCENES_ENV = "GEN3C_STUDIO_MAX_SCENES"
DEFAULT_MAX_SCENES = 12  # about 40 MB each (scene at model size, two preview caches, the 3D view's cloud)
TOMBSTONES = 1024  # closed sessions remembered, so their next action can say what happened

EVICTED = ("This session's scene was released to make room for other sessions (the studio holds {cap} scenes "
           "at a time). Reload the page to load it again: your camera path is kept in this browser.")
EXPIRED = ("This session expired after being idle. Reload the page to load the scene again: your camera path "
           "is kept in this browser.")
CLOSED = "This session was closed. Reload the page to start again."


def max_scenes() -> int:
    from studio.runtime import positive_int_env

    n = positive_int_env(MAX_SCENES_ENV)
    return DEFAULT_MAX_SCENES if n is None else n


class Held:
    """The heavy parts of one session's scene, shared by all its snapshots; `release` drops them."""

    __slots__ = ("scene", "preview", "source", "released", "generated")

    def __init__(self, scene=None, preview=None, source=None, released: str = ""):
        self.scene, self.preview, self.source = scene, preview, source
        self.released = released  # why the scene is gone ("" while held)
        self.generated = None  # studio.model_inputs.GeneratedInputs of the last video made from this scene

    def release(self, reason: str) -> None:
        self.scene = self.preview = self.source = self.generated = None
        self.released = reason


class FifoLock:
    """A lock granted in the order it was asked for (threading.Lock makes no such promise): concurrent edits
    of one session land in the order their handlers started."""

    def __init__(self):
        self._cond = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    def __enter__(self):
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._cond.wait()
        return self

    def __exit__(self, *exc):
        with self._cond:
            self._serving += 1
            self._cond.notify_all()
        return False


class Latest:
    """The newest revision and snapshot of a session, shared (by reference) by all its Session snapshots.

    Long renders compare their snapshot's revision with it and drop their result when a newer edit has
    happened meanwhile (the last change wins). Edits run under `lock` on `newest(...)`, the snapshot the
    previous edit produced, so none works on a state another one has already replaced.
    """

    def __init__(self, value: int = 0):
        self.value = value
        self.lock = FifoLock()
        self.session = None  # the snapshot the last finished edit returned

    def is_current(self, revision: int) -> bool:
        return revision == self.value

    def newest(self, session):
        return self.session if self.session is not None else session

    def publish(self, session) -> None:
        self.session = session


@dataclass
class Entry:
    folder: str
    latest: Latest = field(default_factory=Latest)
    held: Held | None = None


class Registry:
    """Session hash -> Entry, with at most `capacity` scenes held (least recently used dropped first)."""

    def __init__(self, capacity: int | None = None):
        self.capacity = capacity
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._gone: OrderedDict[str, str] = OrderedDict()  # closed key -> why
        self._lock = threading.Lock()

    def cap(self) -> int:
        return self.capacity if self.capacity is not None else max_scenes()

    def open(self, key: str, make_folder) -> tuple[Entry, str]:
        """The entry of `key` (created with a folder from `make_folder()` when new) and, for a key closed
        earlier, why it was closed ("" otherwise)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                return entry, ""
            why = self._gone.pop(key, "")
            entry = self._entries[key] = Entry(make_folder())
            return entry, why

    def why_gone(self, key: str) -> str:
        """Why the session `key` was closed ("" when it is open or unknown)."""
        with self._lock:
            return "" if not key or key in self._entries else self._gone.get(key, "")

    def hold(self, key: str, held: Held) -> None:
        """`held` becomes the scene of `key`; scenes past the cap are released, oldest use first."""
        evicted = []
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return
            entry.held = held
            self._entries.move_to_end(key)
            holding = [k for k, e in self._entries.items() if e.held is not None and e.held.scene is not None]
            cap = self.cap()
            for k in holding[:max(0, len(holding) - cap)]:
                evicted.append(self._entries[k].held)
                self._entries[k].held = None
        for old in evicted:
            old.release(EVICTED.format(cap=cap))

    def touch(self, key: str) -> None:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)

    def close(self, key: str, reason: str = CLOSED) -> Entry | None:
        """Forget `key`: its scene is released (the entry is returned so the caller can remove its folder)."""
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is not None:
                self._gone[key] = reason
                while len(self._gone) > TOMBSTONES:
                    self._gone.popitem(last=False)
        if entry is not None:
            if entry.held is not None:
                entry.held.release(reason)
            entry.latest.session = None  # its snapshots keep no scene alive through the lock object
        return entry

    def held_count(self) -> int:
        with self._lock:
            return sum(1 for e in self._entries.values() if e.held is not None and e.held.scene is not None)

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._entries)


REGISTRY = Registry()
