"""Typed settings: the one owner of every default, bound and description (no torch here).

Each analysis module of :mod:`gradmatch.experiments` opens with
``class Settings(settings.Settings)`` whose field defaults are the paper's values. A config
file (``config/*.yaml``) is an overlay: a section lists only what differs from those defaults.
Pydantic owns the defaults, the validation (one message naming the key) and the JSON schema
(``gradmatch schema``), all from the same class.

Blocks that several analyses share are models of their own, so one option has one name
everywhere:

- :class:`EarlyStopping` (``max_epochs``, ``patience``, ``min_delta``) — for full-batch gradient
  descent an epoch is one step;
- :class:`AdamFit`, the authors' gradient-matching fit by Adam, which maps onto
  :class:`gradmatch.core.estimators.AdamOptions`;
- :class:`OLSProblem`, the seed-56 regression problem of Figures 4 and 7, a *global* block: the
  top-level config key ``ols_problem`` fills the field of that name in every OLS analysis.

Global keys (:data:`GLOBAL_KEYS`: ``preset``, ``device``, ``dataset``, ``wandb``,
``ols_problem``) live at the top of a config file and fill the field of the same name in every
Settings class that declares one. ``mnist_dir`` is filled by the workflow, which owns paths.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gradmatch.data import digits


class Block(BaseModel):
    """Base of every settings model: frozen, unknown keys rejected, no NaN or infinity."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


# ---- checks shared by the validators (all run at validation time, before any job) --------------


class FieldError(ValueError):
    """A check across fields that fails on one of them: the config error names ``key`` (a field
    name, dotted within the model) and ``value``; ``str(error)`` says what is allowed."""

    def __init__(self, key: str, value: Any, message: str):
        super().__init__(message)
        self.key = key
        self.value = list(value) if isinstance(value, tuple) else value


def distinct(key: str, values: tuple) -> None:
    """A grid or seed list must not repeat a value (a repeat duplicates rows of a table)."""
    repeated = [value for i, value in enumerate(values) if value in values[:i]]
    if repeated:
        raise FieldError(
            key,
            values,
            f"repeats {sorted(set(repeated), key=values.index)}; allowed: "
            "distinct values (drop the repeats)",
        )


# The most memory one job may need by the estimate of its Settings (``fits_in_memory``): far
# above every preset (the largest, the paper's dropout, is about 1.3 GiB) and below a node, so
# that ``n_samples: 1.0e+12`` stops at validation instead of in an allocation.
MEMORY_CAP_BYTES = 32 * 2**30


def fits_in_memory(key: str, value: Any, n_bytes: float, formula: str) -> None:
    """Reject a config whose estimated memory (``formula`` = ``n_bytes``) exceeds the cap."""
    if n_bytes > MEMORY_CAP_BYTES:
        raise FieldError(
            key,
            value,
            f"needs about {n_bytes / 2**30:.3g} GiB ({formula}); allowed: at most "
            f"{MEMORY_CAP_BYTES / 2**30:g} GiB (gradmatch.settings.MEMORY_CAP_BYTES); lower it",
        )


def mlp_parameters(n_in: int, hidden: tuple[int, ...], n_out: int) -> int:
    """Weights and biases of an MLP n_in → hidden → n_out (an upper bound for the estimates)."""
    sizes = (n_in, *hidden, n_out)
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))


# Images and pixels per split of the image data sets (the owners: gradmatch.data.digits' fixed
# split, and the published MNIST), for checks at validation time.
DATASET_ROWS = {
    "digits": {"train": digits.N_TRAIN, "test": digits.N_TOTAL - digits.N_TRAIN},
    "mnist": {"train": 60_000, "test": 10_000},
}
DATASET_PIXELS = {"digits": 64, "mnist": 784}


class Settings(Block):
    """Base of an analysis's Settings. ``record()`` is the JSON kept in tables (no W&B keys)."""

    def record(self) -> dict[str, Any]:
        """The settings as plain data, without :data:`UNRECORDED_FIELDS` (side channels)."""
        return self.model_dump(mode="json", exclude=set(UNRECORDED_FIELDS))


# ---- global keys --------------------------------------------------------------------------------

# Each global type carries its default (the paper's), so a Settings field is just
# ``preset: base.Preset`` and the value has one owner.
Preset = Annotated[
    Literal["smoke", "default", "paper"],
    Field("paper", description="the name of the scale preset (recorded in every table)"),
]
Device = Annotated[
    Literal["auto", "cpu", "cuda"],
    Field("auto", description="where training runs: auto (CUDA when present) | cpu | cuda"),
]
Dataset = Annotated[
    Literal["digits", "mnist"],
    Field("mnist", description="image data of Figures 5 and 6: mnist (paper) | digits (offline)"),
]
MnistDir = Annotated[
    str | None,
    Field(
        None,
        description="folder of the MNIST IDX files; filled by the workflow (config key mnist.dir, "
        "else its download folder data/raw/mnist)",
    ),
]


class Wandb(Block):
    """W&B tracking (gradmatch.tracking); never changes a table."""

    mode: Literal["disabled", "offline", "online"] | None = Field(
        None,
        description="disabled | offline (under data/generated/wandb/; upload later with "
        "snakemake --cores 1 wandb_sync) | online; null (the default): $WANDB_MODE of the job "
        "when set, else disabled",
    )
    project: str | None = Field(None, description="W&B project (default: $WANDB_PROJECT)")
    entity: str | None = Field(None, description="W&B entity (default: $WANDB_ENTITY)")


class OLSProblem(Block):
    """The OLS problem of Figures 4 and 7 (paper H.3; authors' ``linear_regression_ols``).

    X ~ N(0, I_p) with n rows, β = beta_scale · N(0, I_p), ε ~ N(0, σ²) drawn in that order from
    ``torch.Generator().manual_seed(seed)``; gradient descent θ_{t+1} = θ_t + εXᵀ(y − Xθ_t)/n
    from θ_0 = 0 with step ε = ``step_size``. σ is each analysis's own setting.
    """

    seed: int = Field(56, ge=0, description="torch.Generator seed of the DGP (X, then β, then ε)")
    n_samples: int = Field(1000, ge=1, description="n, rows of X")
    n_features: int = Field(10, ge=1, description="p, columns of X")
    beta_scale: float = Field(3.0, gt=0, description="β = beta_scale · N(0, I)")
    step_size: float = Field(0.01, gt=0, description="ε of gradient descent on (1/2n)‖y − Xθ‖²")

    @model_validator(mode="after")
    def _fits(self):
        fits_in_memory(
            "n_samples",
            self.n_samples,
            self.n_samples * (self.n_features + 1) * 8,
            f"X and y in float64: n_samples {self.n_samples} × (n_features {self.n_features} + 1) "
            "× 8 bytes",
        )
        return self


# the field every OLS analysis declares: ``ols_problem: base.OLSProblemBlock``
OLSProblemBlock = Annotated[
    OLSProblem,
    Field(
        default_factory=OLSProblem,
        description="the OLS problem (global block ols_problem): X, β from its seed; endpoint "
        "seeds offset from it",
    ),
]


CheckpointMinutes = Annotated[
    float,
    Field(
        10.0,
        gt=0,
        description="minutes between two saves of a training-chunk job's state, which a rerun "
        "after a time limit resumes from (gradmatch.train.checkpoint); changes no table",
    ),
]
# the workflow's channel for checkpoint_minutes (like $GRADMATCH_WANDB: out of the rules' params)
CHECKPOINT_ENV_VAR = "GRADMATCH_CHECKPOINT_MINUTES"


class Globals(Block):
    """The global keys at the top of a config file."""

    preset: Preset
    device: Device
    dataset: Dataset
    wandb: Wandb = Wandb()
    checkpoint_minutes: CheckpointMinutes
    ols_problem: OLSProblem = OLSProblem()


GLOBAL_KEYS = tuple(Globals.model_fields)
# keys the workflow fills (paths); a config file may not set them
WORKFLOW_KEYS = ("mnist_dir",)
# settings that steer side channels or name local paths, not results: never recorded in a table
UNRECORDED_FIELDS = ("wandb", "mnist_dir", "checkpoint_minutes")


# ---- shared blocks inside sections --------------------------------------------------------------


class EarlyStopping(Block):
    """Lightning-style early stopping: stop after ``patience`` epochs without an improvement
    larger than ``min_delta`` of the monitored loss, or at ``max_epochs``."""

    max_epochs: int = Field(ge=1, description="epochs at most (full-batch GD: steps)")
    patience: int = Field(ge=1, description="epochs without improvement before stopping")
    min_delta: float = Field(0.0, ge=0, description="improvement that resets the patience count")


class AdamFit(Block):
    """The authors' gradient-matching fit by Adam on log-parametrised coefficients.

    Options map one to one onto :class:`gradmatch.core.estimators.AdamOptions`; ``batch_size``
    (rows per minibatch target, the stochastic fit of Figs. 3 and 5) and ``init`` (starting value
    of every scale coefficient) are read by the analysis that builds the targets.
    """

    lr: float = Field(1e-2, gt=0, description="Adam learning rate")
    max_epochs: int = Field(1000, ge=1, description="epochs at most")
    patience: int = Field(50, ge=1, description="early-stopping patience on the fit loss")
    min_delta: float = Field(0.0, ge=0, description="improvement that resets the patience count")
    plateau_factor: float | None = Field(
        None, gt=0, lt=1, description="ReduceLROnPlateau factor (null: constant learning rate)"
    )
    plateau_patience: int = Field(10, ge=1, description="ReduceLROnPlateau patience")
    init: float | None = Field(
        None, gt=0, description="starting value of each scale coefficient (null: the family's)"
    )
    init_log_std: float = Field(0.0, ge=0, description="noise σ on log λ at the start")
    batch_size: int | None = Field(
        None, ge=1, description="rows per minibatch target (null: the full-data target)"
    )

    def options(self, **overrides: Any):
        """The :class:`~gradmatch.core.estimators.AdamOptions` of this block (``init``,
        ``seed``, ``device``, ``progress`` given by the caller where they apply)."""
        from gradmatch.core.estimators import AdamOptions

        values = {
            "lr": self.lr,
            "max_epochs": self.max_epochs,
            "patience": self.patience,
            "min_delta": self.min_delta,
            "plateau_factor": self.plateau_factor,
            "plateau_patience": self.plateau_patience,
            "init_log_std": self.init_log_std,
        }
        values.update(overrides)
        return AdamOptions(**values)


class Resources(Block):
    """What one job of an analysis asks the scheduler for (the workflow's ``resources:``).

    ``gpu`` jobs go to GPU nodes under the slurm profile; ``runtime`` is in minutes.
    """

    gpu: int = Field(0, ge=0, description="GPUs per job (1: a training job)")
    threads: int = Field(1, ge=1, description="CPU threads per job")
    runtime: int = Field(10, ge=1, description="wall-clock minutes per job")
    mem_mb: int = Field(1000, ge=1, description="memory per job, MB")
