"""deltaprop: backpropagation done exactly (Bishop & Bishop 2024, ch. 8).

Gradients, Jacobians, Hessians and Levenberg–Marquardt training of feed-forward networks whose
parameters live in one flat vector.  The submodules ``datasets`` and ``plots`` load on first use
(``deltaprop.datasets``, ``from deltaprop import plots``).
"""

import importlib

from .activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from .curvature import (
    CurvatureCheck,
    GaussNewtonDual,
    check_hessian,
    check_jacobian,
    gauss_newton,
    gauss_newton_dual,
    gauss_newton_operator,
    hessian,
    hessian_diagonal,
    hessian_eigenvalues,
    hessian_fd,
    hessian_operator,
    hessian_trace,
    hvp,
    inverse_hessian_outer,
    jacobian_inputs,
    jacobian_params,
    residual_jacobian,
    vjp_inputs,
)
from .curve_fitting import curve_fit
from .gradcheck import GradientCheck, check_gradient
from .layers import Activation, Dense
from .least_squares import LMResult, levenberg_marquardt
from .lm_training import LevenbergMarquardt
from .losses import LOSSES
from .model_io import ModelFileError, load_model, save_model
from .network import ForwardRecord, Network, NetworkSpec, cascade, mlp
from .optimizers import (
    GD,
    OPTIMIZERS,
    Adam,
    CosineDecay,
    EpochStep,
    ExponentialDecay,
    FirstOrderOptimizer,
    Momentum,
    Optimizer,
    RMSprop,
    StepDecay,
    TrainingProblem,
    get_optimizer,
    register_optimizer,
)
from .training import LOOP_STOP_REASONS, History, stop_reasons, train

#: Every value ``History.stop_reason`` can take with the optimizers registered at import.
STOP_REASONS = stop_reasons()

__version__ = "0.1.0"

_LAZY_SUBMODULES = ("datasets", "plots", "estimators", "estimator_io", "solvers", "cli")
# Names that load scikit-learn on first use, so `import deltaprop` stays light.
_LAZY_NAMES = {
    "MLPRegressor": "estimators",
    "MLPClassifier": "estimators",
    "save_estimator": "estimator_io",
    "load_estimator": "estimator_io",
}


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)
    raise AttributeError(f"module 'deltaprop' has no attribute {name!r}")


__all__ = [
    "ACTIVATIONS",
    "GD",
    "LOOP_STOP_REASONS",
    "LOSSES",
    "OPTIMIZERS",
    "OUTPUT_ACTIVATIONS",
    "STOP_REASONS",
    "Activation",
    "Adam",
    "CosineDecay",
    "CurvatureCheck",
    "Dense",
    "EpochStep",
    "ExponentialDecay",
    "FirstOrderOptimizer",
    "ForwardRecord",
    "GaussNewtonDual",
    "GradientCheck",
    "History",
    "LMResult",
    "LevenbergMarquardt",
    "MLPClassifier",
    "MLPRegressor",
    "ModelFileError",
    "Momentum",
    "Network",
    "NetworkSpec",
    "Optimizer",
    "RMSprop",
    "StepDecay",
    "TrainingProblem",
    "__version__",
    "cascade",
    "check_gradient",
    "check_hessian",
    "check_jacobian",
    "curve_fit",
    "gauss_newton",
    "gauss_newton_dual",
    "gauss_newton_operator",
    "get_optimizer",
    "hessian",
    "hessian_diagonal",
    "hessian_eigenvalues",
    "hessian_fd",
    "hessian_operator",
    "hessian_trace",
    "hvp",
    "inverse_hessian_outer",
    "jacobian_inputs",
    "jacobian_params",
    "levenberg_marquardt",
    "load_estimator",
    "load_model",
    "mlp",
    "register_optimizer",
    "residual_jacobian",
    "save_estimator",
    "save_model",
    "train",
    "vjp_inputs",
]
