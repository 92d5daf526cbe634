"""Writing a weights folder atomically (build in `<out>.tmp`, then rename) in the shared layout."""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

from engine.errors import InputError

SHARD_SIZE = "5GB"


@contextmanager
def atomic_output_dir(out_dir, overwrite: bool = False):
    """Yield a temporary sibling folder; on success it replaces `out_dir`, on error it is removed."""
    out = Path(out_dir).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise InputError(f"output folder {out} exists and is not empty (choose another or pass --overwrite)")
    if not out.parent.is_dir():
        raise InputError(f"output folder's parent {out.parent} does not exist")
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def save_transformer(transformer, folder: Path) -> None:
    transformer.save_pretrained(str(folder / "transformer"), safe_serialization=True, max_shard_size=SHARD_SIZE)


def save_vae(vae, mean, std, folder: Path) -> None:
    from engine.models.vae import LATENT_STATS_NAME, save_latent_stats

    vae.save_pretrained(str(folder / "vae"), safe_serialization=True)
    save_latent_stats(folder / "vae" / LATENT_STATS_NAME, mean, std)
