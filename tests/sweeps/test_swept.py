"""What a sweep varies, from override strings: the keys, their values as numbers, and the
keys a job of a sweep learns from the plan or the sweeper."""

from __future__ import annotations

import json

from omegaconf import OmegaConf

from logreg_exp.sweeps.swept import (
    PLAN_FILE,
    keys_the_sweep_varies,
    number,
    planned_jobs_count,
    read_plan,
    split_override,
    swept_keys,
)


def test_override_keys_lose_their_prefixes():
    assert split_override("updater.lr=0.01") == ("updater.lr", "0.01")
    assert split_override("+extra=a=b") == ("extra", "a=b")
    assert split_override("++seed=3") == ("seed", "3")
    assert split_override("~dataset.max_samples") == ("dataset.max_samples", "")


def test_swept_keys_are_those_with_more_than_one_value_in_the_order_typed():
    jobs = [
        ["updater.lr=0.01", "updater=manual", "epochs=2", "batch_size=8"],
        ["updater.lr=0.1", "updater=manual", "epochs=2", "batch_size=8"],
        ["updater.lr=0.01", "updater=optim", "epochs=2", "batch_size=8"],
    ]
    assert swept_keys(jobs) == ["updater.lr", "updater"]
    assert swept_keys([["seed=1"], ["seed=1", "+extra=2"]]) == ["extra"]  # unset counts
    assert swept_keys([["seed=1"], ["seed=1"]]) == []


def test_numbers_are_finite_numbers_only():
    assert [number(t) for t in ("8", "0.01", "1e-3", "-2")] == [8, 0.01, 0.001, -2]
    assert [number(t) for t in ("manual", "true", "null", "inf", "nan", "'8'", "[1,2]", "")] == [
        None
    ] * 8


def test_the_plan_is_read_in_job_order_and_a_bad_one_is_none(tmp_path):
    assert read_plan(tmp_path) is None
    assert planned_jobs_count(tmp_path) is None
    (tmp_path / PLAN_FILE).write_text(json.dumps({"jobs": [["seed=0"], ["seed=1"]]}))
    assert read_plan(tmp_path) == [["seed=0"], ["seed=1"]]
    assert planned_jobs_count(tmp_path) == 2
    (tmp_path / PLAN_FILE).write_text(json.dumps({"jobs": [["seed=0"], ["seed=1"], ["seed=2"]]}))
    assert planned_jobs_count(tmp_path) == 3  # a new plan in the same dir is read anew
    (tmp_path / PLAN_FILE).write_text('{"jobs": [["seed')
    assert read_plan(tmp_path) is None
    assert planned_jobs_count(tmp_path) is None


def test_a_job_learns_what_its_sweep_varies_from_the_plan_or_the_sweepers_params(tmp_path):
    search = OmegaConf.create({"params": {"updater.lr": "tag(log, interval(1e-4, 1))"}})
    assert keys_the_sweep_varies(tmp_path, search) == ["updater.lr"]
    assert keys_the_sweep_varies(tmp_path, OmegaConf.create({"params": None})) is None
    plan = {"jobs": [["seed=0", "epochs=2"], ["seed=1", "epochs=2"]]}
    (tmp_path / PLAN_FILE).write_text(json.dumps(plan))
    assert keys_the_sweep_varies(tmp_path, search) == ["seed"]  # the plan says it all
