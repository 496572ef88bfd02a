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


def test_dataset_sizes_match_their_owners():
    from gradmatch.data import digits

    assert base.DATASET_ROWS["digits"] == {"train": digits.N_TRAIN, "test": digits.N_TOTAL - 1500}
    assert base.DATASET_ROWS["mnist"] == {"train": 60_000, "test": 10_000}
    assert base.DATASET_PIXELS == {"digits": 8 * 8, "mnist": 28 * 28}


def test_distinct_names_the_field_and_the_repeated_values():
    base.distinct("seeds", (3, 1, 2))
    with pytest.raises(base.FieldError, match=r"repeats \[1, 0\]; allowed: distinct") as caught:
        base.distinct("seeds", (1, 0, 1, 0, 1))
    assert (caught.value.key, caught.value.value) == ("seeds", [1, 0, 1, 0, 1])


def test_fits_in_memory_rejects_an_estimate_above_the_cap_with_the_estimate():
    base.fits_in_memory("n", 10, base.MEMORY_CAP_BYTES, "at the cap")
    with pytest.raises(
        base.FieldError, match=r"needs about 64 GiB \(2 × cap\); allowed: at most 32"
    ):
        base.fits_in_memory("n", 10, 2 * base.MEMORY_CAP_BYTES, "2 × cap")


def test_mlp_parameters_count_weights_and_biases():
    assert base.mlp_parameters(64, (8,), 10) == 65 * 8 + 9 * 10
    assert base.mlp_parameters(3, (), 1) == 4


def test_ols_problem_estimates_its_memory_from_rows_and_features():
    assert base.OLSProblem(n_samples=100_000_000, n_features=10).n_samples == 100_000_000
    with pytest.raises(ValidationError, match=r"needs about 8\.2e\+04 GiB"):
        base.OLSProblem(n_samples=10**12)
