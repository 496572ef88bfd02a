"""gradmatch.core: regularizer families, gradient-matching estimators, theory and flows.

Submodules: :mod:`~gradmatch.core.regularizers` and :mod:`~gradmatch.core.estimators` (numpy;
torch only inside the ``"adam"`` method), :mod:`~gradmatch.core.theory` (numpy),
:mod:`~gradmatch.core.flows` (torch). Import them directly; this package imports nothing.
"""
