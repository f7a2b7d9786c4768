"""Event files written in the calling thread: the records tensorboard's own writer makes, read
back by TensorBoard's own reader."""

from __future__ import annotations

import io

from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.summary.writer.record_writer import RecordWriter
from torch.utils.tensorboard.summary import scalar

from logreg_exp.tracking import events
from logreg_exp.tracking.events import EventFile, record


def test_a_record_is_what_tensorboards_record_writer_writes(monkeypatch):
    event = Event(wall_time=1.5, step=3, summary=scalar("val/loss", 0.25))
    theirs = io.BytesIO()
    RecordWriter(theirs).write(event.SerializeToString())
    assert record(event) == theirs.getvalue()
    monkeypatch.setattr(events, "crc32c", events._pure_crc32c)  # without google-crc32c
    assert record(event) == theirs.getvalue()


def test_tensorboard_reads_back_what_an_event_file_holds(tmp_path):
    file = EventFile(tmp_path)
    file.add_summary(scalar("train/loss", 0.5), step=1)
    file.add_summary(scalar("train/loss", 0.25), step=2)
    file.flush()
    readable_while_open = list(EventFileLoader(str(file.path)).Load())
    file.close()
    read = list(EventFileLoader(str(file.path)).Load())
    assert file.path.name.startswith("events.out.tfevents.")
    assert read[0].file_version == "brain.Event:2"
    assert [(e.step, e.summary.value[0].tensor.float_val[0]) for e in read[1:]] == [
        (1, 0.5),
        (2, 0.25),
    ]
    assert len(readable_while_open) == 3
