"""gradmatch.core: regularizer families, gradient-matching estimators, theory, autodiff, flows.

Submodules: :mod:`~gradmatch.core.regularizers` and :mod:`~gradmatch.core.estimators` (numpy;
torch only inside the ``"adam"`` method), :mod:`~gradmatch.core.theory` and
:mod:`~gradmatch.core.stats` (numpy), :mod:`~gradmatch.core.autodiff` (parameters, loss
gradients, Hessian-vector products), :mod:`~gradmatch.core.flows` (RK4 gradient and modified
flows) and :mod:`~gradmatch.core.igr` (paper Eq. 6), all three torch. Import them directly;
this package imports nothing.
"""
