"""Models, the batched trainer and early stopping, shared by Figures 3, 5 and 6.

``train_batched(spec, seeds, X, y, ...)`` trains K members of one MLP (:class:`MLPSpec`) as one
stacked computation, each with its own seed, hyperparameters and early stopping, and returns a
:class:`TrainResult` (final and best weights, stop and best epochs, per-epoch history). Member k
trained in a batch equals member k trained alone; ``build_mlp`` is the solo form and
``TrainResult.member(k)`` extracts one member as an ``nn.Sequential``. Details and the contract:
:mod:`gradmatch.train.trainer`. ``minibatch_targets`` (:mod:`gradmatch.train.matching`) gives the
minibatch targets −∇L_b(θ̂) of the authors' stochastic gradient-matching fit (Figs. 3 and 5).
"""

from gradmatch.train.devices import resolve_device, resolve_dtype
from gradmatch.train.early_stopping import EarlyStopping
from gradmatch.train.matching import minibatch_targets
from gradmatch.train.models import MLPSpec, build_mlp, init_stacked, load_member, stacked_forward
from gradmatch.train.optim import SGD, Adam
from gradmatch.train.penalties import ElasticNetPenalty
from gradmatch.train.trainer import TrainResult, member_loss, train_batched

__all__ = [
    "SGD",
    "Adam",
    "EarlyStopping",
    "ElasticNetPenalty",
    "MLPSpec",
    "TrainResult",
    "build_mlp",
    "init_stacked",
    "load_member",
    "member_loss",
    "minibatch_targets",
    "resolve_device",
    "resolve_dtype",
    "stacked_forward",
    "train_batched",
]
