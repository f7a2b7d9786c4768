"""TensorBoard event files, written in the calling thread.

An event file is a sequence of records (TFRecord framing): the length of a serialized
``Event``, a masked CRC-32C of the length, the event, a masked CRC-32C of the event. The
first event names the file version. tensorboard's own ``EventFileWriter`` (under torch's
``SummaryWriter``) writes the same records from a thread of its own, one per open file;
this writer writes them as they come, and the caller flushes (once an epoch), so a sweep
that writes hundreds of runs' files has no thread per file to start and join.

The CRC-32C is google-crc32c's C code where it is installed (``pip install
'logreg-exp[plots]'``), else tensorboard's own in pure Python, which takes about 16 ms for
a 90 KB picture.
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
import time
from pathlib import Path
from typing import IO, Any

from tensorboard.compat.proto.event_pb2 import Event, SourceMetadata
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

from logreg_exp.files import durable_close
from logreg_exp.hydra_compat import crc32c_function
from logreg_exp.run_files import EVENTS_PREFIX, PICTURE_EVENTS_SUFFIX

FILE_VERSION = "brain.Event:2"
WRITER = "logreg_exp.tracking.events"

_MASK_DELTA = 0xA282EAD8
_uids = itertools.count()  # tells apart the files one process opens in the same second


_pure_crc32c = crc32c_function()


def _crc32c_function() -> Any:
    try:
        import google_crc32c
    except ImportError:
        return _pure_crc32c
    return google_crc32c.value if google_crc32c.implementation == "c" else _pure_crc32c


crc32c = _crc32c_function()


def masked_crc32c(data: bytes) -> int:
    """The CRC-32C of ``data``, masked as TFRecord masks it."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def record(event: Event) -> bytes:
    """``event`` framed as one record of an event file."""
    data = event.SerializeToString()
    header = struct.pack("<Q", len(data))
    checks = struct.pack("<I", masked_crc32c(header)), struct.pack("<I", masked_crc32c(data))
    return b"".join((header, checks[0], data, checks[1]))


def first_event() -> Event:
    """The event an event file starts with: its version, and the writer."""
    metadata = SourceMetadata(writer=WRITER)
    return Event(wall_time=time.time(), file_version=FILE_VERSION, source_metadata=metadata)


def event_file_name(suffix: str = "") -> str:
    """``events.out.tfevents.<seconds>.<host>.<pid>.<n><suffix>``, as tensorboard names one."""
    host = socket.gethostname()
    return f"{EVENTS_PREFIX}{int(time.time()):010d}.{host}.{os.getpid()}.{next(_uids)}{suffix}"


class EventFile:
    """A new event file in ``log_dir``, open for events: ``add_summary``, ``flush``,
    ``close`` (made durable). An OSError (a full disk) comes from the call that meets it."""

    def __init__(self, log_dir: Path) -> None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        self.path = Path(log_dir) / event_file_name()
        self.file: IO[bytes] | None = open(self.path, "xb")  # noqa: SIM115 (closed by close)
        self.add(first_event())
        self.flush()

    def add(self, event: Event) -> None:
        assert self.file is not None, "the event file is closed"
        self.file.write(record(event))

    def add_summary(self, summary: Any, step: int | None = None) -> None:
        """``summary`` as an event of now, at ``step`` (none: 0), as tensorboard writes it."""
        event = Event(summary=summary, wall_time=time.time())
        if step is not None:
            event.step = int(step)
        self.add(event)

    def flush(self) -> None:
        if self.file is not None:
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            file, self.file = self.file, None
            durable_close(self.path, file)


def read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float, float]]]:
    """Every scalar the event files directly in ``log_dir`` hold (not the pictures' files), as
    (step, value, wall time) under its tag, in the order written. A record cut short (a run
    killed while it wrote) ends its file's reading; nothing here raises for a damaged file."""
    found: dict[str, list[tuple[int, float, float]]] = {}
    for path in sorted(Path(log_dir).glob(f"{EVENTS_PREFIX}*")):
        if path.name.endswith(PICTURE_EVENTS_SUFFIX):
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for event in events_in(data):
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    found.setdefault(value.tag, []).append(
                        (int(event.step), float(value.simple_value), float(event.wall_time))
                    )
    return found


def events_in(data: bytes) -> list[Event]:
    """The events of an event file's bytes, up to the first record cut short or unreadable."""
    events, at = [], 0
    while at + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, at)
        start, end = at + 12, at + 12 + length
        if end + 4 > len(data):
            break
        try:
            events.append(Event.FromString(data[start:end]))
        except Exception:  # protobuf's DecodeError: a damaged record
            break
        at = end + 4
    return events


def session_start(hparams: dict[str, float | str]) -> Summary:
    """The HParams session-start summary of ``hparams`` (numbers and strings), without the
    experiment summary (see ``loggers.TensorBoardLogger.start_session``)."""
    info = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
    for key, value in hparams.items():
        if isinstance(value, str):
            info.hparams[key].string_value = value
        else:
            info.hparams[key].number_value = value
    return hparams_summary(plugin_data_pb2.HParamsPluginData(session_start_info=info))


def session_end(success: bool) -> Summary:
    """The HParams session-end summary, with the run's real status: the one that
    ``torch.utils.tensorboard.summary.hparams`` returns always says success."""
    status = api_pb2.STATUS_SUCCESS if success else api_pb2.STATUS_FAILURE
    end = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=time.time())
    return hparams_summary(plugin_data_pb2.HParamsPluginData(session_end_info=end))


def hparams_summary(data: plugin_data_pb2.HParamsPluginData) -> Summary:
    """``data`` as the summary the HParams plugin reads, under the tag of its kind."""
    start = data.HasField("session_start_info")
    tag = metadata.SESSION_START_INFO_TAG if start else metadata.SESSION_END_INFO_TAG
    return Summary(value=[Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(data))])


def scalar_summary(tag: str, value: float) -> Summary:
    """A scalar as TensorBoard's ``simple_value``."""
    return Summary(value=[Summary.Value(tag=tag, simple_value=float(value))])
