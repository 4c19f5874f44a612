"""Compare two figures pixel by pixel and draw where they differ.

A figure counts as reproduced when the share of pixels that differ (in any
colour channel) is at most the image tolerance. The difference image shows the
new figure faded to grey with every differing pixel in red, so a reader sees
which panel changed. Images are read with Pillow (matplotlib's own dependency).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mltoolkit.workdir.artifacts import atomic_output

__all__ = ["ImageComparison", "compare_images", "read_pixels"]


@dataclass(frozen=True)
class ImageComparison:
    """The outcome of comparing two images."""

    archived_size: tuple[int, int]
    now_size: tuple[int, int]
    differing_share: float | None
    """Share (0..1) of pixels that differ; ``None`` when the sizes differ."""
    changed_columns: tuple[int, int] | None = None
    """First and last pixel column holding a difference (where in a row of panels it is)."""
    diff_image: Path | None = None

    def describe(self) -> str:
        """One line for the report: sizes, share of differing pixels, where."""
        archived = "x".join(map(str, self.archived_size))
        now = "x".join(map(str, self.now_size))
        if self.differing_share is None:
            return f"size {archived} -> {now}: not comparable pixel by pixel"
        where = ""
        if self.changed_columns is not None:
            first, last = self.changed_columns
            where = f", columns {first}-{last} of {self.now_size[0]}"
        return f"{self.differing_share:.2%} of pixels differ{where} ({archived})"


def read_pixels(path: str | os.PathLike[str]) -> np.ndarray:
    """The image at ``path`` as an ``(height, width, 4)`` array of bytes (RGBA).

    Raises:
        ValueError: not an image Pillow can read.
    """
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGBA"))
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{path}: not a readable image ({error})") from None


def _write_diff(now: np.ndarray, mask: np.ndarray, out: Path) -> Path:
    """The new image in light grey with differing pixels in red, written atomically to ``out``."""
    grey = now[..., :3].astype(np.float32).mean(axis=2)
    faded = (255 - (255 - grey) * 0.3).astype(np.uint8)
    picture = np.stack([faded, faded, faded], axis=2)
    picture[mask] = (220, 0, 0)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as temporary:
        Image.fromarray(picture, "RGB").save(temporary, format="PNG")
    return out


def compare_images(
    archived: str | os.PathLike[str], now: str | os.PathLike[str], diff_out: Path | None = None
) -> ImageComparison:
    """Compare the two images; with ``diff_out``, write the difference image there when pixels differ.

    Raises:
        ValueError: either file is not a readable image.
    """
    old, new = read_pixels(archived), read_pixels(now)
    old_size, new_size = (old.shape[1], old.shape[0]), (new.shape[1], new.shape[0])
    if old.shape != new.shape:
        return ImageComparison(old_size, new_size, None)
    mask = np.any(old != new, axis=2)
    share = float(mask.mean()) if mask.size else 0.0
    if not mask.any():
        return ImageComparison(old_size, new_size, share)
    columns = np.flatnonzero(mask.any(axis=0))
    written = _write_diff(new, mask, diff_out) if diff_out is not None else None
    return ImageComparison(old_size, new_size, share, (int(columns[0]), int(columns[-1])), written)
