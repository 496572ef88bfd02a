"""Resumable jobs (gradmatch.train.checkpoint): an interrupted, resumed run equals the
uninterrupted one exactly; a truncated, damaged or foreign state file is ignored, never used."""

import json
import signal

import pandas as pd
import pytest
import torch

from gradmatch.train import SGD, Adam, EarlyStopping, MLPSpec, train_batched
from gradmatch.train import checkpoint as ck

SPEC = MLPSpec(in_features=5, hidden=(8, 8), out_features=3)
JOB = {"analysis": "test", "chunk": 0, "settings_json": '{"a": 1}', "device": "cpu"}


def data():
    """Labels of a random linear map: learnable, so validation loss improves for a while."""
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(5, 3, generator=gen)
    X, Xv = torch.randn(200, 5, generator=gen), torch.randn(60, 5, generator=gen)
    return X, (X @ W).argmax(1), Xv, (Xv @ W).argmax(1)


OPTIMIZERS = {
    "sgd": SGD(lr=[0.02, 0.5, 0.05], momentum=0.9, milestones=(3,)),
    "adam": Adam(lr=[1e-2, 0.2, 1e-2], milestones=(4,)),
}


def train(optimizer, checkpoint=None, on_epoch=None):
    """Three members with dropout, a schedule and val-loss early stopping (member 1 stops
    early), so every part of the loop state matters."""
    X, y, Xv, yv = data()
    return train_batched(
        SPEC, [1, 2, 3], X, y, loss="cross_entropy", optimizer=OPTIMIZERS[optimizer], epochs=12,
        batch_size=32, drop_last=False, dropout=[0.0, 0.2, 0.4],
        early_stopping=EarlyStopping("val_loss", patience=2), eval_data={"val": (Xv, yv)},
        progress=False, checkpoint=checkpoint, on_epoch=on_epoch,
    )  # fmt: skip


def assert_same(result, expected):
    for got, want in zip(result.final + result.best, expected.final + expected.best, strict=True):
        assert torch.equal(got, want)
    assert result.epochs_trained.tolist() == expected.epochs_trained.tolist()
    assert result.best_epoch.tolist() == expected.best_epoch.tolist()
    pd.testing.assert_frame_equal(result.history, expected.history, check_exact=True)


def job(path, minutes=100.0, **changes):
    return ck.Checkpoint(path, minutes=minutes, **{**JOB, **changes})


@pytest.fixture(scope="module")
def uninterrupted():
    return {name: train(name) for name in OPTIMIZERS}


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("name", ["SIGTERM", "SIGUSR1"])
def test_a_signal_during_training_saves_and_the_rerun_resumes_exactly(
    tmp_path, monkeypatch, capsys, uninterrupted, optimizer, name
):
    expected = uninterrupted[optimizer]
    assert expected.epochs_trained.min() < 12 == expected.epochs_trained.max()  # one stops early
    path = tmp_path / "state.pt"
    monkeypatch.setenv(ck.TEST_HOOK, f"{name}:train:5")
    with pytest.raises(ck.Preempted, match=f"stopped by {name}.*6 of 12 epochs"):
        with job(path) as state:
            train(optimizer, state)
    monkeypatch.delenv(ck.TEST_HOOK)
    with job(path) as state:
        resumed = train(optimizer, state)
    assert "resuming from the state file" in capsys.readouterr().err
    assert_same(resumed, expected)


def test_a_crash_after_a_periodic_save_resumes_from_that_save(tmp_path, uninterrupted):
    path = tmp_path / "state.pt"

    def crash(epoch, metrics):
        if epoch == 7:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"), job(path, minutes=1e-9) as state:
        train("sgd", state, on_epoch=crash)
    header = json.loads(path.read_bytes().partition(b"\n")[0])
    assert header["where"] == "training, 7 of 12 epochs"  # saved after every epoch
    with job(path) as state:
        resumed = train("sgd", state)
    assert_same(resumed, uninterrupted["sgd"])


def test_a_finished_training_state_rebuilds_the_result_without_training(tmp_path, uninterrupted):
    path = tmp_path / "state.pt"
    with job(path) as state:
        train("sgd", state)
    header = json.loads(path.read_bytes().partition(b"\n")[0])
    assert header["where"] == "training done"
    calls = []
    with job(path) as state:
        resumed = train("sgd", state, on_epoch=lambda epoch, metrics: calls.append(epoch))
    assert calls == []
    assert_same(resumed, uninterrupted["sgd"])


def saved_state(path):
    with job(path) as state:
        state.save("fits", {"rows": [{"x": 1.0}], "rng": ck.rng_state()}, "fits: 1 of 2")
    return path.read_bytes()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda raw: raw[: len(raw) - 100], "truncated"),
        (lambda raw: raw[:10], "unreadable header"),
        (lambda raw: raw.replace(b'"version": 1', b'"version": 99'), "format version 99"),
        (lambda raw: raw[:-1] + bytes([raw[-1] ^ 1]), "damaged"),
    ],
)
def test_a_truncated_or_damaged_state_file_is_ignored_with_its_name(
    tmp_path, capsys, damage, reason
):
    path = tmp_path / "state.pt"
    path.write_bytes(damage(saved_state(path)))
    capsys.readouterr()
    with job(path) as state:
        assert state.resumed("fits") is None
    message = capsys.readouterr().err
    assert f"ignoring the state file {path}" in message and reason in message
    assert "starting from scratch" in message


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"chunk": 1}, "chunk"),
        ({"analysis": "other"}, "analysis"),
        ({"settings_json": '{"a": 2}'}, "settings_sha256"),
        ({"device": "cuda"}, "device"),
    ],
)
def test_a_foreign_state_file_is_ignored(tmp_path, capsys, change, field):
    path = tmp_path / "state.pt"
    saved_state(path)
    with job(path, **change) as state:
        assert state.sections == {}
    message = capsys.readouterr().err
    assert f"ignoring the state file {path}: written for another job ({field}" in message
    with job(path) as state:  # the job it belongs to still reads it
        assert state.resumed("fits")["rows"] == [{"x": 1.0}]


def test_a_training_state_of_another_shape_is_ignored_and_training_restarts(
    tmp_path, capsys, uninterrupted
):
    path = tmp_path / "state.pt"
    other = MLPSpec(in_features=5, hidden=(4,), out_features=3)
    X, y, _, _ = data()
    with job(path) as state:
        train_batched(other, [1, 2, 3], X, y, loss="cross_entropy", epochs=2, progress=False,
                      checkpoint=state)  # fmt: skip
    with job(path) as state:
        resumed = train("sgd", state)
    assert "ignoring section 'train'" in capsys.readouterr().err
    assert_same(resumed, uninterrupted["sgd"])


def rows_using_the_global_generator(checkpoint, count=4):
    return ck.resumable_rows(
        checkpoint, "fits", count, lambda k: {"k": k, "draw": float(torch.rand(()))}
    )


@pytest.mark.parametrize("member", [0, 2])
def test_a_signal_during_a_fit_redoes_that_member_with_the_same_generators(
    tmp_path, monkeypatch, member
):
    torch.manual_seed(5)
    expected = rows_using_the_global_generator(None)
    path = tmp_path / "state.pt"
    monkeypatch.setenv(ck.TEST_HOOK, f"SIGTERM:fits:{member}")
    torch.manual_seed(5)
    with pytest.raises(ck.Preempted, match="interrupted a member's fit"), job(path) as state:
        rows_using_the_global_generator(state)
    monkeypatch.delenv(ck.TEST_HOOK)
    with job(path) as state:
        assert len(state.resumed("fits")["rows"]) == member
        torch.manual_seed(99)  # the saved generator state wins over whatever the rerun holds
        assert rows_using_the_global_generator(state) == expected


def test_the_signal_handlers_are_restored_after_the_job(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    with job(tmp_path / "state.pt"):
        assert signal.getsignal(signal.SIGTERM) != before
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_non_positive_interval_is_refused(tmp_path):
    with pytest.raises(ValueError, match="checkpoint_minutes: must be > 0"):
        job(tmp_path / "state.pt", minutes=0)
