"""Shared settings blocks: bounds, the Adam-fit mapping onto AdamOptions, globals, resources."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gradmatch import experiments
from gradmatch import settings as base
from gradmatch.core.estimators import AdamOptions


def test_adam_fit_maps_onto_adam_options_one_to_one():
    block = base.AdamFit(lr=0.05, max_epochs=7, patience=3, plateau_factor=0.5, init_log_std=0.1)
    options = block.options(seed=4)
    assert options == AdamOptions(
        lr=0.05, max_epochs=7, patience=3, plateau_factor=0.5, init_log_std=0.1, seed=4
    )


def test_blocks_are_frozen_reject_unknown_keys_and_non_finite_numbers():
    block = base.EarlyStopping(max_epochs=3, patience=2)
    with pytest.raises(ValidationError):
        block.patience = 5
    with pytest.raises(ValidationError, match="extra"):
        base.EarlyStopping(max_epochs=3, patience=2, wait=1)
    with pytest.raises(ValidationError, match="finite"):
        base.AdamFit(lr=float("inf"))
    with pytest.raises(ValidationError):
        base.EarlyStopping(max_epochs=0, patience=1)


def test_global_defaults_are_the_papers_and_have_one_owner():
    assert base.Globals().model_dump(include={"preset", "device", "dataset"}) == {
        "preset": "paper",
        "device": "auto",
        "dataset": "mnist",
    }
    for name in experiments.names():
        fields = experiments.module(name).Settings.model_fields
        for key in ("preset", "device", "dataset"):
            if key in fields:
                assert fields[key].default == base.Globals.model_fields[key].default, (name, key)


def test_every_analysis_declares_resources_and_gpu_analyses_are_chunked_or_single():
    for name in experiments.names():
        resources = experiments.module(name).RESOURCES
        assert isinstance(resources, base.Resources), name
        assert resources.runtime >= 1 and resources.mem_mb >= 1, name


def test_record_leaves_out_side_channels_and_local_paths():
    from gradmatch.experiments import dropout

    settings = dropout.Settings(wandb=base.Wandb(mode="offline"), mnist_dir="/data/mnist")
    record = settings.record()
    assert "wandb" not in record and "mnist_dir" not in record
    assert record["adam_fit"]["lr"] == settings.adam_fit.lr
