"""deltaprop: backpropagation done exactly (Bishop & Bishop 2024, ch. 8).

Gradients, Jacobians, Hessians and Levenberg–Marquardt training of feed-forward networks whose
parameters live in one flat vector.
"""

from .activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from .gradcheck import GradientCheck, check_gradient
from .layers import Activation, Dense
from .losses import LOSSES
from .network import Network, mlp

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "OUTPUT_ACTIVATIONS",
    "Activation",
    "Dense",
    "GradientCheck",
    "Network",
    "__version__",
    "check_gradient",
    "mlp",
]
