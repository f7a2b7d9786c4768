"""Pictures as PNG bytes: a matplotlib ``Figure`` rendered on the Agg canvas, and a PNG as a
TensorBoard image, in a run's event file or in an event file of its own.

Matplotlib is used through ``Figure`` and the Agg canvas directly, not pyplot: no global
figure state, no GUI backend. This module imports neither matplotlib nor TensorBoard until a
function needs them, so the sweep's process can import it cheaply.
"""

from __future__ import annotations

import io
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from logreg_exp.files import atomic_write
from logreg_exp.run_files import EVENTS_PREFIX, PICTURE_EVENTS_SUFFIX

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class Picture:
    """A PNG and its size in pixels."""

    png: bytes
    width: int
    height: int


def new_figure(width_in: float, height_in: float, layout: str | None = None) -> Figure:
    """A matplotlib Figure on its own Agg canvas (``width_in`` x ``height_in`` inches at 100
    dpi); ``layout="constrained"`` lets matplotlib place titles and colour bars."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def render_png(fig: Figure) -> Picture:
    """``fig`` as a PNG, with its size read back from the PNG itself."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return picture_of(buffer.getvalue())


def picture_of(png: bytes) -> Picture:
    """A PNG's bytes with the size from its IHDR chunk (whatever the rcParams made it)."""
    width, height = struct.unpack(">II", png[16:24])
    return Picture(png, width, height)


def image_summary(tag: str, picture: Picture) -> Any:
    """A TensorBoard ``Summary`` holding ``picture`` under ``tag`` (the Images tab): the same
    bytes as the file on disk."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    image = Summary.Image(
        height=picture.height, width=picture.width, colorspace=4, encoded_image_string=picture.png
    )
    return Summary(value=[Summary.Value(tag=tag, image=image)])


def write_image_events(run_dir: Path, tag: str, picture: Picture) -> Path:
    """An event file in ``run_dir`` holding ``picture`` alone (a run of its own in TensorBoard),
    written whole under a temporary name and renamed; the earlier files of this kind in
    ``run_dir`` are removed after, so a redrawn picture replaces the old one. Needs TensorBoard,
    not torch."""
    from tensorboard.compat.proto.event_pb2 import Event

    from logreg_exp.tracking.events import first_event, record

    now = time.time()
    name = f"{EVENTS_PREFIX}{int(now):010d}.{socket.gethostname()}{PICTURE_EVENTS_SUFFIX}"
    path = Path(run_dir) / name
    events = [first_event(), Event(wall_time=now, step=0, summary=image_summary(tag, picture))]

    def write(f: Any) -> None:
        f.write(b"".join(record(event) for event in events))

    atomic_write(path, write)
    for old in Path(run_dir).glob(f"{EVENTS_PREFIX}*{PICTURE_EVENTS_SUFFIX}"):
        if old != path:
            old.unlink(missing_ok=True)
    return path


def remove_image_events(run_dir: Path) -> None:
    """Remove the event files ``write_image_events`` wrote in ``run_dir``."""
    for old in Path(run_dir).glob(f"{EVENTS_PREFIX}*{PICTURE_EVENTS_SUFFIX}"):
        old.unlink(missing_ok=True)
