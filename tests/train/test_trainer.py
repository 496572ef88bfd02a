"""The batched trainer: member k in a batch equals member k trained alone; masks freeze members."""

import numpy as np
import pytest
import torch

from gradmatch.train import (
    SGD,
    Adam,
    EarlyStopping,
    ElasticNetPenalty,
    MLPSpec,
    build_mlp,
    train_batched,
)

SPEC = MLPSpec(in_features=5, hidden=(16, 8), out_features=1, activation="tanh")


def solo_train(spec, seed, X, y, *, make_opt, epochs, batch_size, lambdas=None, loss="mse"):
    """Member ``seed`` trained alone in a plain PyTorch loop (torch.optim, nn.Sequential)."""
    torch.manual_seed(seed)
    model = build_mlp(spec).to(X.dtype)
    opt, scheduler = make_opt(model.parameters())
    order_gen = torch.Generator().manual_seed(seed)
    loss_fn = torch.nn.MSELoss() if loss == "mse" else torch.nn.CrossEntropyLoss()
    for _ in range(epochs):
        order = torch.randperm(X.shape[0], generator=order_gen)
        for step in range(X.shape[0] // batch_size):
            rows = order[step * batch_size : (step + 1) * batch_size]
            out = model(X[rows])
            objective = loss_fn(out, y[rows].unsqueeze(-1) if loss == "mse" else y[rows])
            if lambdas is not None:
                flat = torch.cat([p.flatten() for p in model.parameters()])
                smooth = torch.nn.functional.smooth_l1_loss(
                    flat, torch.zeros_like(flat), reduction="sum", beta=1e-3
                )
                objective = objective + lambdas[0] * smooth + lambdas[1] * flat.square().sum()
            opt.zero_grad()
            objective.backward()
            opt.step()
        if scheduler is not None:
            scheduler.step()
    return [p.detach() for p in model.parameters()]


def _adam(params):
    return torch.optim.Adam(params, lr=1e-2), None


def _sgd_momentum(params):
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)
    return opt, torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[1, 2], gamma=0.1)


def _max_difference(batched, solo):
    return max(float((b - s).abs().max()) for b, s in zip(batched, solo, strict=True))


@pytest.mark.parametrize(
    ("optimizer", "make_opt"),
    [(Adam(lr=1e-2), _adam), (SGD(lr=0.05, momentum=0.9, milestones=(1, 2)), _sgd_momentum)],
    ids=["adam", "sgd_momentum_multistep"],
)
def test_batched_member_equals_solo_member_per_member_data(optimizer, make_opt):
    seeds = [3, 11, 29]
    X = torch.randn(3, 96, 5, generator=torch.Generator().manual_seed(0))
    y = torch.randn(3, 96, generator=torch.Generator().manual_seed(1))
    lambdas = ([1e-3, 1e-2, 0.0], [1e-2, 0.0, 1e-3])
    result = train_batched(
        SPEC,
        seeds,
        X,
        y,
        optimizer=optimizer,
        epochs=3,
        batch_size=16,
        penalty=ElasticNetPenalty(*lambdas, beta=1e-3),
        device="cpu",
        progress=False,
    )
    for k, seed in enumerate(seeds):
        solo = solo_train(
            SPEC,
            seed,
            X[k],
            y[k],
            make_opt=make_opt,
            epochs=3,
            batch_size=16,
            lambdas=(lambdas[0][k], lambdas[1][k]),
        )
        assert _max_difference(result.parameters(k), solo) < 1e-6


def test_batched_member_equals_solo_with_shared_data_and_cross_entropy():
    spec = MLPSpec(5, (12,), 3, hidden_bias=False)
    X = torch.randn(80, 5, generator=torch.Generator().manual_seed(2))
    y = torch.randint(0, 3, (80,), generator=torch.Generator().manual_seed(3))
    result = train_batched(
        spec,
        [0, 1],
        X,
        y,
        loss="cross_entropy",
        optimizer=Adam(lr=1e-2),
        epochs=3,
        batch_size=20,
        device="cpu",
        progress=False,
    )
    for k in range(2):
        solo = solo_train(
            spec, k, X, y, make_opt=_adam, epochs=3, batch_size=20, loss="cross_entropy"
        )
        assert _max_difference(result.parameters(k), solo) < 1e-6
    assert len(result.parameters(0)) == 3  # hidden W, output W and b: no hidden bias


def test_plain_sgd_per_member_learning_rate_matches_solo():
    X = torch.randn(64, 5, generator=torch.Generator().manual_seed(4))
    y = torch.randn(64, generator=torch.Generator().manual_seed(5))
    lrs = [0.01, 0.1]
    result = train_batched(
        SPEC,
        [7, 7],
        X,
        y,
        optimizer=SGD(lr=lrs),
        epochs=3,
        batch_size=16,
        device="cpu",
        progress=False,
    )
    for k, lr in enumerate(lrs):
        solo = solo_train(
            SPEC,
            7,
            X,
            y,
            epochs=3,
            batch_size=16,
            make_opt=lambda p, lr=lr: (torch.optim.SGD(p, lr=lr), None),
        )
        assert _max_difference(result.parameters(k), solo) < 1e-6


def test_stopped_member_stays_frozen_and_others_keep_training():
    X = torch.randn(64, 5, generator=torch.Generator().manual_seed(6))
    y = torch.randn(64, generator=torch.Generator().manual_seed(7))
    snapshots = {}

    def remember(epoch, metrics):
        snapshots[epoch] = metrics["active"].copy()

    # member 0's learning rate is so small that its loss never improves by min_delta
    result = train_batched(
        SPEC,
        [0, 1],
        X,
        y,
        optimizer=Adam(lr=[1e-12, 1e-2]),
        epochs=30,
        batch_size=64,
        early_stopping=EarlyStopping("train_loss", patience=2, min_delta=1e-6),
        device="cpu",
        progress=False,
        on_epoch=remember,
    )
    assert result.epochs_trained[0] == 3 and result.epochs_trained[1] == 30
    frozen = train_batched(
        SPEC,
        [0],
        X,
        y,
        optimizer=Adam(lr=1e-12),
        epochs=3,
        batch_size=64,
        device="cpu",
        progress=False,
    )
    assert _max_difference(result.parameters(0), frozen.parameters(0)) == 0.0
    assert snapshots[3].tolist() == [False, True]
    history = result.history
    assert history.loc[history.member == 0, "epoch"].max() == 2
    assert len(history) == 3 + 30


def test_best_state_follows_selection_score_and_flags_members_never_eligible():
    X = torch.randn(64, 5, generator=torch.Generator().manual_seed(8))
    y = torch.randn(64, generator=torch.Generator().manual_seed(9))

    def only_second_member(metrics):
        return torch.where(torch.tensor([False, True]), -metrics["train_loss"], torch.nan)

    kept = {}
    result = train_batched(
        SPEC,
        [0, 1],
        X,
        y,
        optimizer=Adam(lr=1e-2),
        epochs=4,
        batch_size=64,
        device="cpu",
        progress=False,
        select=only_second_member,
        on_epoch=lambda e, m: kept.setdefault(e, m["train_loss"][1]),
    )
    assert result.best_found.tolist() == [False, True]
    assert result.best_epoch[0] == -1
    losses = np.array([kept[e] for e in range(4)])
    assert result.best_epoch[1] == int(np.argmin(losses))


def test_same_seeds_give_identical_weights_and_dropout_runs():
    X = torch.randn(64, 5, generator=torch.Generator().manual_seed(10))
    y = torch.randn(64, generator=torch.Generator().manual_seed(11))
    spec = MLPSpec(5, (16, 16), 1)
    runs = [
        train_batched(
            spec,
            [1, 2],
            X,
            y,
            dropout=[0.0, 0.5],
            epochs=2,
            batch_size=16,
            device="cpu",
            progress=False,
        )
        for _ in range(2)
    ]
    assert _max_difference(runs[0].final, runs[1].final) == 0.0
    model = runs[0].member(1)
    assert [type(m).__name__ for m in model] == [
        "Linear",
        "ReLU",
        "Dropout",
        "Linear",
        "ReLU",
        "Linear",
    ]
    assert model[2].p == 0.5
    after_last = MLPSpec(5, (16, 16), 1, dropout_after_last=True)
    assert [type(m).__name__ for m in build_mlp(after_last, dropout=0.2)].count("Dropout") == 2


def test_member_with_dropout_does_not_depend_on_the_other_members_of_its_job():
    X = torch.randn(64, 5, generator=torch.Generator().manual_seed(12))
    y = torch.randn(64, generator=torch.Generator().manual_seed(13))
    spec = MLPSpec(5, (16, 16), 1)

    def train(seeds, rates):
        kwargs = dict(epochs=3, batch_size=16, device="cpu", progress=False)
        return train_batched(spec, seeds, X, y, dropout=rates, **kwargs)

    alone = train([7], [0.3])
    with_one = train([7, 8], [0.3, 0.5])
    with_two = train([9, 7, 8], [0.1, 0.3, 0.5])
    member_alone = alone.parameters(0)
    assert _max_difference(with_one.parameters(0), member_alone) == 0.0
    assert _max_difference(with_two.parameters(1), member_alone) == 0.0
    assert _max_difference(with_one.parameters(1), member_alone) > 1e-3  # a real difference


def test_bad_inputs_name_the_argument():
    X = torch.randn(10, 5)
    y = torch.randn(10)
    with pytest.raises(ValueError, match="loss: 'hinge'"):
        train_batched(SPEC, [0], X, y, loss="hinge", device="cpu", progress=False)
    with pytest.raises(ValueError, match="early_stopping.monitor: 'val_loss'"):
        train_batched(
            SPEC,
            [0],
            X,
            y,
            epochs=1,
            batch_size=5,
            device="cpu",
            progress=False,
            early_stopping=EarlyStopping("val_loss"),
        )
    with pytest.raises(ValueError, match="dropout: give one rate or one per member"):
        train_batched(SPEC, [0, 1], X, y, dropout=[0.1, 0.2, 0.3], device="cpu", progress=False)
    with pytest.raises(ValueError, match="batch_size=32 with drop_last"):
        train_batched(SPEC, [0], X, y, device="cpu", progress=False)
