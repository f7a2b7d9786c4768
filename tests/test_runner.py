import json

import pytest

from logreg_exp.runner import run

from .conftest import compose_config


@pytest.mark.parametrize("monitor", ["val_loss", "val_acc"])
def test_run_returns_the_best_monitored_value_for_sweepers(tmp_path, monitor):
    value = run(compose_config("epochs=2", f"monitor={monitor}"), tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["monitor"] == monitor
    assert value == metrics[f"best_{monitor}"]
