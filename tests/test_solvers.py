"""The solver table: one row per solver, used by the estimators and the command."""

from __future__ import annotations

import pytest

from deltaprop import cli
from deltaprop.estimators import MLPRegressor
from deltaprop.lm_training import LevenbergMarquardt
from deltaprop.optimizers import GD, Adam, Momentum
from deltaprop.solvers import DEFAULT_MAX_ITER, SOLVER_TABLE, SOLVERS, get_solver


def test_every_solver_builds_its_optimizer():
    kinds = {"lm": LevenbergMarquardt, "trainbr": LevenbergMarquardt, "adam": Adam,
             "sgd": Momentum, "gd": GD}
    assert SOLVERS == tuple(kinds)
    for name, kind in kinds.items():
        assert type(get_solver(name).optimizer(learning_rate=0.01, l2=0.0)) is kind
    assert get_solver("trainbr").optimizer(0.01, 0.0).bayesian


def test_batches_and_defaults():
    assert DEFAULT_MAX_ITER == {"lm": 1000, "trainbr": 1000, "adam": 200, "sgd": 200,
                                "gd": 1000}
    assert [s.name for s in SOLVER_TABLE.values() if s.full_batch] == ["lm", "trainbr"]
    assert get_solver("sgd").batch_size(50) == 50 and get_solver("adam").batch_size(999) == 200
    assert get_solver("gd").batch_size(999) is None and get_solver("gd").batch_size(9, 4) == 4
    assert [s.name for s in SOLVER_TABLE.values() if not s.stops_on_validation] == ["trainbr"]


def test_unknown_solver_is_named():
    with pytest.raises(ValueError, match=r"`solver` must be one of .lm., .* got .lbfgs."):
        get_solver("lbfgs")


def test_the_estimators_and_the_command_accept_the_same_solvers(rng):
    X, y = rng.normal(size=(12, 2)), rng.normal(size=12)
    for name in SOLVERS:
        est = MLPRegressor((2,), solver=name, max_iter=1, random_state=0).fit(X, y)
        assert est.n_iter_ == 1
        assert cli.parse_args(["train", "--solver", name, "--quiet"]).solver == name
    with pytest.raises(cli.CliError, match="--solver"):
        cli.parse_args(["train", "--solver", "lbfgs"])
