"""The solvers of the estimators and the command line, in one table.

Everything the users' layer knows about a solver sits in its :class:`Solver` row: the
optimizer it builds, whether it always takes the full batch, its minibatch default, its
``max_iter`` default, whether it stops early on validation rows, and whether it accepts a
weight penalty.  :class:`deltaprop.estimators.MLPRegressor` and ``MLPClassifier`` and the
``deltaprop`` command read this table; nothing else restates it.

============  ============================================================================
solver        optimizer (``deltaprop.optimizers`` / ``deltaprop.lm_training``)
============  ============================================================================
``"lm"``      ``LevenbergMarquardt(l2=l2)``, full batch; default ``max_iter`` 1000
``"trainbr"`` ``LevenbergMarquardt(bayesian=True)``: α and β re-estimated (MacKay 1992);
              returns the epoch of highest log evidence and stops 6 epochs after it
              (``evidence_patience``), so validation rows are only reported; ``l2`` must
              stay 0; default ``max_iter`` 1000
``"adam"``    ``Adam(learning_rate_init, weight_decay=l2)``, minibatches; default 200
``"sgd"``     ``Momentum(learning_rate_init, beta=0.9, nesterov=True, weight_decay=l2)``,
              minibatches, as scikit-learn's ``sgd``; default 200
``"gd"``      ``GD(learning_rate_init, weight_decay=l2)``, full batch; default 1000
============  ============================================================================

The ``max_iter`` defaults are MATLAB's ``epochs`` for ``trainlm``, ``trainbr`` and ``traingd``
and scikit-learn's ``max_iter`` for its ``adam`` and ``sgd``; the minibatch default is
scikit-learn's ``"auto"``, min(200, n_samples).

References
----------
Marquardt 1963; Hagan & Menhaj 1994 (LM for networks); MacKay 1992 and Foresee & Hagan 1997
(Bayesian regularisation); Kingma & Ba 2015 (Adam); Sutskever et al. 2013 (Nesterov momentum).

Examples
--------
>>> from deltaprop.solvers import SOLVERS, get_solver
>>> SOLVERS
('lm', 'trainbr', 'adam', 'sgd', 'gd')
>>> s = get_solver("adam")
>>> s.full_batch, s.default_max_iter, s.batch_size(1000), s.batch_size(50)
(False, 200, 200, 50)
>>> type(get_solver("trainbr").optimizer(learning_rate=1e-3, l2=0.0)).__name__
'LevenbergMarquardt'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .lm_training import LevenbergMarquardt
from .optimizers import GD, Adam, Momentum, Optimizer

#: Minibatch size of the minibatch solvers when ``batch_size`` is None: min(this, n_samples).
AUTO_BATCH = 200


@dataclass(frozen=True)
class Solver:
    """What the users' layer knows about one solver.

    Attributes
    ----------
    name : str
        The value of the estimators' ``solver`` and of the command's ``--solver``.
    summary : str
        One line for help texts.
    make : callable (learning_rate: float, l2: float) -> Optimizer
        Builds the optimizer.
    default_max_iter : int
        Epochs when ``max_iter`` is None.
    full_batch : bool
        Always the full batch: ``batch_size`` must be None.
    minibatches : bool
        ``batch_size=None`` means min(``AUTO_BATCH``, n_samples) rather than the full batch.
    stops_on_validation : bool
        Validation rows end training early; False where the solver picks its own epoch
        (trainbr, by the evidence) and validation rows are only reported.
    takes_l2 : bool
        Accepts a weight penalty ``l2`` > 0 (trainbr estimates its own).
    """

    name: str
    summary: str
    make: Callable[[float, float], Optimizer]
    default_max_iter: int
    full_batch: bool = False
    minibatches: bool = False
    stops_on_validation: bool = True
    takes_l2: bool = True

    def optimizer(self, learning_rate: float, l2: float) -> Optimizer:
        """A new optimizer of this solver (``learning_rate`` is ignored by the LM solvers)."""
        return self.make(float(learning_rate), float(l2))

    def batch_size(self, n_samples: int, batch_size: int | None = None) -> int | None:
        """The minibatch size for ``n_samples`` rows; None means the full batch."""
        if batch_size is not None:
            return int(batch_size)
        return min(AUTO_BATCH, int(n_samples)) if self.minibatches else None


SOLVER_TABLE: dict[str, Solver] = {s.name: s for s in (
    Solver("lm", "Levenberg-Marquardt (MATLAB's trainlm)",
           lambda lr, l2: LevenbergMarquardt(l2=l2), 1000, full_batch=True),
    Solver("trainbr", "Levenberg-Marquardt with Bayesian regularisation (trainbr)",
           lambda lr, l2: LevenbergMarquardt(bayesian=True), 1000, full_batch=True,
           stops_on_validation=False, takes_l2=False),
    Solver("adam", "Adam on minibatches",
           lambda lr, l2: Adam(lr=lr, weight_decay=l2), 200, minibatches=True),
    Solver("sgd", "SGD with Nesterov momentum 0.9 on minibatches",
           lambda lr, l2: Momentum(lr=lr, beta=0.9, nesterov=True, weight_decay=l2), 200,
           minibatches=True),
    Solver("gd", "full-batch gradient descent",
           lambda lr, l2: GD(lr=lr, weight_decay=l2), 1000),
)}

#: The solver names, in the table's order.
SOLVERS: tuple[str, ...] = tuple(SOLVER_TABLE)
#: ``max_iter`` used when it is None, by solver.
DEFAULT_MAX_ITER: dict[str, int] = {s.name: s.default_max_iter for s in SOLVER_TABLE.values()}


def get_solver(name: str) -> Solver:
    """The table's row for ``name``; ValueError listing the solvers for anything else."""
    if not isinstance(name, str) or name not in SOLVER_TABLE:
        raise ValueError(f"`solver` must be one of {', '.join(map(repr, SOLVERS))}; "
                         f"got {name!r}.")
    return SOLVER_TABLE[name]
