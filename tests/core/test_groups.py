"""Per-group families: groups from a model, and per-layer weight decay recovered on a CNN."""

import numpy as np
import pytest
import torch

from gradmatch import ElasticNet, Ridge, flat_parameters, loss_gradient, match_gradients
from gradmatch.core.groups import ParameterGroups, parameter_groups
from gradmatch.data.digits import load_digits_split

PER_LAYER_DECAY = {"0": 1e-2, "4": 5e-2}  # conv layer, linear layer


def _cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, kernel_size=3),  # "0": 27 weights + 3 biases
        torch.nn.Tanh(),  # smooth, so that L-BFGS reaches a stationary point
        torch.nn.AvgPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(3 * 3 * 3, 10),  # "4": 270 weights + 10 biases
    ).double()


def _digits(n=300):
    pixels, labels = load_digits_split("train")
    X = torch.from_numpy(pixels[:n]).double().reshape(n, 1, 8, 8)
    return X, torch.from_numpy(labels[:n])


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: threads only add overhead on a shared machine
    yield
    torch.set_num_threads(threads)


def _train_to_stationarity(model, X, y, decay):
    """Full-batch float64 L-BFGS on J = CE + Σ_layer λ_layer ‖θ_layer‖²; returns ‖∇J‖."""
    layers = dict(model.named_children())
    optimizer = torch.optim.LBFGS(
        model.parameters(),
        lr=1,
        max_iter=300,
        tolerance_grad=1e-13,
        tolerance_change=0,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def objective():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(X), y)
        for name, strength in decay.items():
            loss = loss + strength * sum((p**2).sum() for p in layers[name].parameters())
        loss.backward()
        return loss

    optimizer.step(objective)
    objective()
    return float(torch.cat([p.grad.reshape(-1) for p in model.parameters()]).norm())


def test_parameter_groups_follow_flat_parameters_order():
    model = _cnn()
    groups = parameter_groups(model)
    assert groups.names == ("0", "4")
    assert groups.sizes() == {"0": 30, "4": 280}
    assert groups.size == flat_parameters(model).size
    by_parameter = parameter_groups(model, by="parameter")
    assert by_parameter.names == ("0.weight", "0.bias", "4.weight", "4.bias")
    by_kind = parameter_groups(model, patterns={"weight": "*.weight", "bias": "*.bias"})
    assert by_kind.sizes() == {"weight": 297, "bias": 13}
    np.testing.assert_array_equal(by_kind.labels()[26:31], [0, 1, 1, 1, 0])  # conv biases


def test_bad_groups_are_rejected_with_the_fix():
    model = _cnn()
    with pytest.raises(ValueError, match=r"\['0.bias', '4.bias'\] match none .* catch-all"):
        parameter_groups(model, patterns={"weight": "*.weight"})
    with pytest.raises(ValueError, match=r"by must be one of \['layer', 'parameter'\]"):
        parameter_groups(model, by="module")
    family = Ridge(groups=parameter_groups(model))
    with pytest.raises(ValueError, match="groups cover 310 coordinates but theta has 10"):
        match_gradients(family, np.ones(10), np.ones(10))


def test_per_layer_weight_decay_of_a_cnn_is_recovered_to_one_percent(one_thread):
    model = _cnn()
    X, y = _digits()
    gradient_norm = _train_to_stationarity(model, X, y, PER_LAYER_DECAY)
    assert gradient_norm < 1e-6
    theta = flat_parameters(model)
    target = loss_gradient(model, "cross_entropy", X, y)
    fit = match_gradients(Ridge(groups=parameter_groups(model)), theta, target)
    for layer, strength in PER_LAYER_DECAY.items():
        assert fit.params["lambda"][layer] == pytest.approx(strength, rel=0.01)
    assert fit.residual_ratio < 1e-3
    one_lambda = match_gradients(Ridge(), theta, target)
    assert one_lambda.residual_ratio > 0.1  # a single λ cannot explain two decays


def test_grouped_elastic_net_torch_and_numpy_agree_and_penalty_sums_by_group():
    rng = np.random.default_rng(0)
    groups = ParameterGroups.from_sizes({"a": 300, "b": 200})
    family = ElasticNet(beta=1e-3, groups=groups)
    theta = rng.normal(size=500)
    truth = np.array([0.1, 0.4, 1.0, 3.0])  # λ1 (a, b), λ2 (a, b)
    target = family.design(theta) @ truth + 1e-3 * rng.normal(size=500)
    host = match_gradients(family, theta, target)
    device = match_gradients(family, torch.from_numpy(theta).float(), torch.from_numpy(target))
    np.testing.assert_allclose(host.coefficients, truth, rtol=0.05)
    np.testing.assert_allclose(device.coefficients, host.coefficients, rtol=1e-5)
    params = family.params(truth, 500)
    assert params == {"lambda_l1": {"a": 0.1, "b": 0.4}, "lambda_l2": {"a": 1.0, "b": 3.0}}
    parts = [
        ElasticNet(beta=1e-3).penalty(theta[s], {"lambda_l1": l1, "lambda_l2": l2})
        for s, l1, l2 in ((slice(0, 300), 0.1, 1.0), (slice(300, 500), 0.4, 3.0))
    ]
    assert family.penalty(theta, params) == pytest.approx(sum(parts), rel=1e-12)


def test_groups_from_labels_and_sizes():
    groups = ParameterGroups.from_labels(["w", "w", "b", "w"])
    assert groups.names == ("w", "b")
    assert groups.segments == ((0, 2, 0), (2, 3, 1), (3, 4, 0))
    assert ParameterGroups.from_sizes({"x": 2, "y": 3}).sizes() == {"x": 2, "y": 3}
