"""provenance.json: which code made a run, at its start and its end; shown in TensorBoard's
Text tab and by evaluate."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime

import pytest

from logreg_exp.provenance import (
    command_line,
    ended,
    flat_provenance,
    git_state,
    provenance_lines,
    read_provenance,
    start_provenance,
    write_provenance,
)
from logreg_exp.tracking.events import events_in, read_scalars
from tests.helpers import event_records, run_cli


def test_the_command_line_is_what_the_user_typed():
    argv = ["/x/logreg_exp/__main__.py", "-m", "updater.lr=0.1,1", "hydra.run.dir=a b"]
    assert command_line(argv) == "python -m logreg_exp -m updater.lr=0.1,1 'hydra.run.dir=a b'"
    assert command_line(["bench.py", "--quick"]) == "bench.py --quick"


def test_outside_a_git_repository_there_is_no_commit_and_no_error(tmp_path):
    assert git_state(str(tmp_path)) is None
    assert git_state(str(tmp_path / "missing")) is None


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_commit_and_whether_tracked_files_changed(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "a.txt").write_text("1")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    state = git_state(str(tmp_path))
    assert state is not None and len(state["commit"]) == 40 and state["dirty"] is False
    (tmp_path / "new.txt").write_text("untracked: not a change of the code")
    assert git_state(str(tmp_path))["dirty"] is False
    (tmp_path / "a.txt").write_text("2")
    assert git_state(str(tmp_path))["dirty"] is True


def test_a_record_has_versions_times_and_reads_back(tmp_path):
    record = start_provenance("cpu", 2)
    assert record["ended"] is None and record["threads"] == 2 and record["device"] == "cpu"
    assert {"python", "torch", "hydra-core", "omegaconf", "numpy", "logreg-exp"} <= set(
        record["versions"]
    )
    done = ended(record)
    assert datetime.fromisoformat(done["ended"]) >= datetime.fromisoformat(done["started"])
    write_provenance(tmp_path, done)
    assert read_provenance(tmp_path) == done
    flat = flat_provenance(done)
    assert flat["versions.python"] == done["versions"]["python"] and "ended" in flat
    assert provenance_lines(done)[0].startswith("made by: ")


def test_a_damaged_or_missing_provenance_reads_as_none(tmp_path):
    assert read_provenance(tmp_path) is None
    (tmp_path / "provenance.json").write_text('{"cut')
    assert read_provenance(tmp_path) is None
    (tmp_path / "provenance.json").write_text("[1]")
    assert read_provenance(tmp_path) is None
    assert provenance_lines(None) == ["made by: unknown (no readable provenance.json)"]


def test_an_event_file_cut_short_reads_up_to_its_last_whole_record(tmp_path):
    from torch.utils.tensorboard.summary import scalar

    from logreg_exp.tracking.events import EventFile

    events = EventFile(tmp_path)
    for step in (1, 2, 3):
        events.add_summary(scalar("val/loss", 1.0 / step), step)
    events.close()
    data = events.path.read_bytes()
    assert [s for s, _, _ in read_scalars(tmp_path)["val/loss"]] == [1, 2, 3]
    events.path.write_bytes(data[:-7])
    assert [s for s, _, _ in read_scalars(tmp_path)["val/loss"]] == [1, 2]
    assert len(events_in(b"\x01\x02")) == 0


@pytest.mark.slow
def test_a_run_records_its_provenance_and_evaluate_shows_it(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(
        "dataset.n_samples=400", "epochs=2", "dataset.test_fraction=0.2",
        f"hydra.run.dir={run_dir}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    record = json.loads((run_dir / "provenance.json").read_text())
    assert record["command"] == (
        f"python -m logreg_exp dataset.n_samples=400 epochs=2 dataset.test_fraction=0.2 "
        f"hydra.run.dir={run_dir}"
    )
    assert "git" not in record  # tmp_path is in no repository
    assert record["device"] == "cpu" and record["threads"] >= 1
    assert datetime.fromisoformat(record["ended"]) >= datetime.fromisoformat(record["started"])
    texts = [value for tag, _, value in event_records(run_dir) if tag == "provenance/text_summary"]
    assert len(texts) == 1 and b'"versions"' in texts[0] and b'"started"' not in texts[0]

    shown = run_cli(str(run_dir), cwd=tmp_path, module="logreg_exp.evaluate")
    assert shown.returncode == 0, shown.stderr
    assert f"made by: {record['command']} (not in a git repository)" in shown.stdout
    assert f"torch {record['versions']['torch']}" in shown.stdout
