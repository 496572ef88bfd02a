"""gradmatch: estimate implicit regularization by gradient matching (Rudoler et al., 2026).

The public names are re-exported lazily (PEP 562), so ``import gradmatch`` does not import torch::

    import gradmatch
    theta = gradmatch.flat_parameters(model)
    target = gradmatch.loss_gradient(model, "mse", X, y)          # −∇L(θ̂), Appendix D
    # any loss module or function, a DataLoader, a subset of the parameters:
    # gradmatch.loss_gradient(model, torch.nn.CrossEntropyLoss(), loader, params=["fc.weight"])
    fit = gradmatch.match_gradients(gradmatch.ElasticNet(beta=1e-3), theta, target)
    fit.params, fit.residual_ratio

The names live in ``gradmatch.core``: :mod:`~gradmatch.core.regularizers` (families),
:mod:`~gradmatch.core.estimators` (gradient matching), :mod:`~gradmatch.core.autodiff`
(parameters, loss gradients, Hessian-vector products), :mod:`~gradmatch.core.flows` (RK4
gradient and modified flows) and :mod:`~gradmatch.core.igr` (paper Eq. 6); import those
modules directly for everything else (``from gradmatch.core.theory import ...``).
"""

from __future__ import annotations

import importlib
import sys

__version__ = "0.1.0"

# pyproject's requires-python, said again for a source tree put on sys.path by hand
if sys.version_info < (3, 11):  # noqa: UP036 (ruff assumes py311; this runs on older Pythons)
    raise ImportError(
        f"gradmatch needs Python >= 3.11 (snakemake 9 and its slurm plugin do too); this is "
        f"Python {sys.version.split()[0]} at {sys.executable}. Create an environment with Python "
        "3.11 or newer (e.g. `python3.11 -m venv .venv` or `conda create -n gradmatch "
        "python=3.11`) and install gradmatch there"
    )

_EXPORTS = {
    "Family": "gradmatch.core.regularizers",
    "Ridge": "gradmatch.core.regularizers",
    "SmoothL1": "gradmatch.core.regularizers",
    "ElasticNet": "gradmatch.core.regularizers",
    "DiagQuadratic": "gradmatch.core.regularizers",
    "SymQuadratic": "gradmatch.core.regularizers",
    "GradNormSquared": "gradmatch.core.regularizers",
    "AdamOptions": "gradmatch.core.adam",
    "Fit": "gradmatch.core.estimators",
    "UnderdeterminedWarning": "gradmatch.core.estimators",
    "ParameterGroups": "gradmatch.core.groups",
    "parameter_groups": "gradmatch.core.groups",
    "bootstrap_batches": "gradmatch.core.uncertainty",
    "effective_parameter_count": "gradmatch.core.uncertainty",
    "match_gradients": "gradmatch.core.estimators",
    "match_trajectory": "gradmatch.core.estimators",
    "loss_gradient": "gradmatch.core.autodiff",
    "flat_parameters": "gradmatch.core.autodiff",
    "select_parameters": "gradmatch.core.autodiff",
    "loss_value": "gradmatch.core.autodiff",
    "gradient": "gradmatch.core.autodiff",
    "hessian_vector_product": "gradmatch.core.autodiff",
    "hessian_gradient": "gradmatch.core.autodiff",
    "gradient_flow": "gradmatch.core.flows",
    "modified_flow": "gradmatch.core.flows",
    "IGRFit": "gradmatch.core.igr",
    "estimate_igr": "gradmatch.core.igr",
    "fit_igr": "gradmatch.core.igr",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module 'gradmatch' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
