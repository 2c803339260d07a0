"""Write docs/tutorial.md: the backpropagation chapter (Bishop & Bishop 2024, ch. 8), executed.

Usage::

    python docs/make_tutorial.py            # full run: docs/tutorial.md and docs/figures/*.png
    python docs/make_tutorial.py --quick --out /tmp/tut   # small sizes, a few seconds

Every section is one function that returns its Markdown: prose, the code it shows and the
output of that code.  The code shown IS the code run: each section keeps its demo as a string,
fills in its sizes (``{{name}}`` placeholders from FULL or QUICK), executes it in a fresh
namespace with stdout captured, and fills the prose's ``{{name:format}}`` placeholders from the
variables that code computed, so no number in the text is typed by hand.  The figures are drawn
by small helpers here (not shown in the tutorial) from the same namespace.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from threadpoolctl import threadpool_limits

# Load every BLAS library (NumPy's, SciPy's) now: threadpool_limits only reaches loaded ones.
import deltaprop.curvature
import deltaprop.lm_training  # noqa: F401

DOCS = Path(__file__).resolve().parent
#: BLAS threads while the tutorial runs: one, so timings on a small shared machine are stable.
BLAS_THREADS = 1

#: Sizes of the full run (the committed tutorial) and of ``--quick`` (the test).
FULL = {
    "n_check": 200, "jac_epochs": 30, "hess_n": 200, "hess_sizes": [1, 8, 8, 1],
    "hess_epochs": 100, "repeat": 5, "train_n": 2000, "gd_epochs": 5000, "adam_epochs": 3000,
    "lm_epochs": 30, "bayes_epochs": 50, "small_n": 30, "small_epochs": 100,
}
QUICK = {
    "n_check": 50, "jac_epochs": 10, "hess_n": 60, "hess_sizes": [1, 4, 4, 1],
    "hess_epochs": 30, "repeat": 2, "train_n": 200, "gd_epochs": 150, "adam_epochs": 150,
    "lm_epochs": 10, "bayes_epochs": 12, "small_n": 30, "small_epochs": 30,
}

_PLACEHOLDER = re.compile(r"\{\{(\w+)(?::([^}]*))?\}\}")


# ---------------------------------------------------------------------------- machinery
def fill(template: str, values: dict) -> str:
    """Replace each ``{{name}}`` or ``{{name:spec}}`` by ``format(values[name], spec)``.

    A missing name raises KeyError, so the text cannot quote a number nobody computed.
    """
    return _PLACEHOLDER.sub(lambda m: format(values[m.group(1)], m.group(2) or ""), template)


@dataclass
class Context:
    """What the sections share: sizes, where figures go, and the numbers they report."""

    settings: dict
    figures: Path
    numbers: dict = field(default_factory=dict)

    def run(self, code: str) -> tuple[str, dict]:
        """Fill ``code`` with the settings, execute it; return its Markdown and namespace.

        Returns
        -------
        markdown : str
            The code as run, in a ``python`` block, then its printed output in a ``text`` block.
        namespace : dict
            The variables the code left behind.
        """
        source = fill(code, self.settings).strip("\n")
        namespace: dict = {"__name__": "__tutorial__"}
        out = io.StringIO()
        saved = np.get_printoptions()
        cwd = Path.cwd()
        os.chdir(self.figures.parent)  # the code writes its figures to figures/
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(source, "<tutorial>", "exec"), namespace)
        finally:
            os.chdir(cwd)
            np.set_printoptions(**saved)
        printed = out.getvalue().rstrip()
        return f"```python\n{source}\n```\n\nOutput:\n\n```text\n{printed}\n```\n", namespace

    def keep(self, namespace: dict, *names: str) -> dict:
        """Record the named variables as the section's reported numbers; return them."""
        picked = {name: namespace[name] for name in names}
        self.numbers.update(picked)
        return picked

    def figure(self, fig: Figure, name: str, caption: str) -> str:
        """Save ``fig`` as figures/<name>.png; return the Markdown that shows it."""
        fig.savefig(self.figures / f"{name}.png", format="png", dpi=100)
        return f"![{caption}](figures/{name}.png)\n\n*{caption}*\n"


def claim(holds: bool, what: str) -> None:
    """Stop if a statement the prose makes about the numbers does not hold for them."""
    if not holds:
        raise RuntimeError(f"the tutorial's text says {what}, but this run's numbers disagree.")


def new_figure(width: float = 6.0, height: float = 4.0) -> Figure:
    """A Figure on the Agg canvas (no pyplot state)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def machine() -> str:
    """One line naming this machine's CPU, cores and the Python/NumPy versions."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (f"{cpu}, {os.cpu_count()} logical cores, Python {platform.python_version()}, "
            f"NumPy {np.__version__}")


# ---------------------------------------------------------------------------- header
def header(ctx: Context) -> str:
    """Title, purpose, notation and the machine the timings come from."""
    text = """\
# Backpropagation, executed: Bishop & Bishop (2024), chapter 8, with deltaprop

This tutorial runs the backpropagation chapter of Bishop & Bishop, *Deep Learning: Foundations
and Concepts* (2024), §8.1, equation by equation, and checks each claim numerically; the
equivalent sections of Bishop's *Pattern Recognition and Machine Learning* (PRML, 2006) are
§5.3–5.4. Every number and figure below was produced by `python docs/make_tutorial.py{{mode}}`;
the code blocks are exactly the code that ran, followed by what it printed.

**Notation.** deltaprop writes $z$ for a pre-activation and $a$ for an activation:
$z_l = W_l a_{l-1} + b_l$, $a_l = h(z_l)$, $a_0 = x$, and $\\delta_l = \\partial E/\\partial z_l$.
The book uses the opposite letters ($a_j$ for the pre-activation, $z_j = h(a_j)$ for the
activation); the $\\delta$'s are the same quantities. A layer's weights $W_l$ have shape
(outputs, inputs), and all weights and biases live in one vector `net.params`
(per layer: $W$ row by row, then $b$).

**Timings** are wall-clock seconds on this machine ({{machine}}; BLAS limited to
{{threads}} thread, as the script sets); they say nothing about other machines.

Sections: 1. forward propagation, the error and the δ recursion · 2. numerical
differentiation · 3. the Jacobian · 4. the Hessian · 5. gradient descent against
Levenberg–Marquardt.
"""
    mode = " --quick" if ctx.settings is QUICK else ""
    return fill(text, {"mode": mode, "machine": machine(), "threads": BLAS_THREADS})


# ---------------------------------------------------------------------------- section 1
FORWARD_CODE = '''
import numpy as np
import deltaprop

np.set_printoptions(precision=4, suppress=True)
# §8.1.3: D = 2 inputs, M = 3 tanh hidden units, K = 2 linear outputs, E = ½ Σ_k (y_k − t_k)²
net = deltaprop.mlp([2, 3, 2], activation="tanh", output="identity", loss="sse", seed=1)
layer1, layer2 = net.dense_layers
x = np.array([[0.5, -1.0]])                  # one pattern, as a row: a_0 = x
t = np.array([[1.0, 0.0]])

# forward propagation
z1 = x @ layer1.W.T + layer1.b               # z_j = Σ_i w_ji x_i + b_j
a1 = np.tanh(z1)                             # a_j = h(z_j)
y = a1 @ layer2.W.T + layer2.b               # y_k = Σ_j w_kj a_j + b_k
E = 0.5 * np.sum((y - t) ** 2)

# backward propagation of δ = ∂E/∂z
delta2 = y - t                               # δ_k = y_k − t_k
delta1 = (1 - a1**2) * (delta2 @ layer2.W)   # δ_j = h'(z_j) Σ_k w_kj δ_k, h'(z) = 1 − tanh²(z)
dW2, db2 = delta2.T @ a1, delta2.sum(0)      # ∂E/∂w_kj = δ_k a_j
dW1, db1 = delta1.T @ x, delta1.sum(0)       # ∂E/∂w_ji = δ_j x_i

print("layer 1: z =", z1[0], " a = tanh(z) =", a1[0], " δ =", delta1[0])
print("layer 2: z =", y[0], " a = y =", y[0], " δ = y − t =", delta2[0])
print("E =", E)
print("∂E/∂W1 = δ1 a0ᵀ =", dW1.round(4).tolist())
print("∂E/∂W2 = δ2 a1ᵀ =", dW2.round(4).tolist())

# the library: the same numbers
loss, grad = net.gradient(x, t)
by_hand = np.concatenate([dW1.ravel(), db1, dW2.ravel(), db2])  # net.params order
err_loss = abs(loss - E)
err_grad = np.abs(by_hand - grad).max()
record = net.forward_record(x)               # the forward pass, as backpropagation keeps it
err_cache = max(np.abs(record.z[0] - z1).max(), np.abs(record.a[0] - a1).max())
print(f"|E − net.loss| = {err_loss:.1e}, max |by hand − net.gradient| = {err_grad:.1e}, "
      f"max |z1, a1 − the forward record's z, a| = {err_cache:.1e}")
'''


def section_forward(ctx: Context) -> str:
    """§8.1.3: forward pass, error and δ recursion by hand, against ``net.gradient``."""
    code, ns = ctx.run(FORWARD_CODE)
    values = ctx.keep(ns, "err_loss", "err_grad", "err_cache")
    values["P"] = ns["net"].n_params
    prose = """\
## 1. Forward propagation, the error and the δ recursion (§8.1.3)

The chapter's worked example (§8.1.3; PRML §5.3.2) is a two-layer network with tanh hidden
units, linear outputs and the sum-of-squares error $E = \\tfrac12\\sum_k (y_k - t_k)^2$ of one
pattern. Forward propagation computes $z^{(1)} = W_1 x + b_1$, $a^{(1)} = \\tanh z^{(1)}$,
$y = W_2 a^{(1)} + b_2$. Backpropagation starts from the output errors $\\delta_k = y_k - t_k$
(PRML eq. 5.54), sends them back through the weights,
$\\delta_j = h'(z_j)\\sum_k w_{kj}\\delta_k$ with $h'(z) = 1 - \\tanh^2 z$ (PRML eq. 5.56), and
every derivative is a product of the error at the output end of a weight and the activation at
its input end: $\\partial E/\\partial w_{ji} = \\delta_j a_i$, i.e.
$\\partial E/\\partial W_l = \\delta_l a_{l-1}^\\top$.

"""
    closing = """
The hand computation and `net.gradient` (one forward and one backward pass over all
{{P}} parameters) agree to rounding: the largest difference in the gradient is
{{err_grad:.1e}} and in the error {{err_loss:.1e}}; the forward record the library keeps for
the backward pass (`net.forward_record`) matches $z^{(1)}, a^{(1)}$ to {{err_cache:.1e}}.
"""
    return fill(prose, values) + code + fill(closing, values)


# ---------------------------------------------------------------------------- section 2
NUMERICAL_CODE = '''
import numpy as np
import deltaprop
from deltaprop.gradcheck import central_differences

rng = np.random.default_rng(0)
net = deltaprop.mlp([2, 3, 2], activation="tanh", loss="sse", seed=1)
X, T = rng.normal(size=(10, 2)), rng.normal(size=(10, 2))
_, g = net.gradient(X, T)                    # backpropagation: the reference
w0 = net.params.copy()


def E(w):
    net.params[:] = w
    return net.loss(X, T)


def forward_differences(E, w, eps):          # (E(w + ε e_p) − E(w)) / ε, error O(ε)
    E0 = E(w)
    return np.array([(E(w + eps * e) - E0) / eps for e in np.eye(w.size)])


def error(numeric):                          # largest error relative to the largest |∂E/∂w|
    return np.abs(numeric - g).max() / np.abs(g).max()


eps = np.logspace(-14, -1, 53)
err_fwd = np.array([error(forward_differences(E, w0, h)) for h in eps])
err_cen = np.array([error(central_differences(E, w0, h)) for h in eps])  # error O(ε²)
net.params[:] = w0


def slope(lo, hi, err):                      # least-squares slope of log error vs log ε
    keep = (eps >= lo) & (eps <= hi)
    return np.polyfit(np.log10(eps[keep]), np.log10(err[keep]), 1)[0]


slope_fwd, slope_cen = slope(1e-6, 1e-2, err_fwd), slope(1e-4, 1e-2, err_cen)
slope_fwd_round, slope_cen_round = slope(1e-14, 1e-10, err_fwd), slope(1e-14, 1e-10, err_cen)
best_fwd, best_cen = eps[err_fwd.argmin()], eps[err_cen.argmin()]
u = np.finfo(float).eps
print(f"truncation range: slope {slope_fwd:.2f} (forward, 1e-6 ≤ ε ≤ 1e-2), "
      f"{slope_cen:.2f} (central, 1e-4 ≤ ε ≤ 1e-2)")
print(f"round-off range (ε ≤ 1e-10): slope {slope_fwd_round:.2f} (forward), "
      f"{slope_cen_round:.2f} (central)")
print(f"best ε: forward {best_fwd:.1e} (error {err_fwd.min():.1e}; √u = {u**0.5:.1e}), "
      f"central {best_cen:.1e} (error {err_cen.min():.1e}; u^(1/3) = {u**(1/3):.1e})")

# the check every new layer deserves: all P parameters of a bigger network
data = deltaprop.datasets.sine(n_samples={{n_check}}, noise=0.1, seed=0)
big = deltaprop.mlp([1, 20, 20, 1], activation="tanh", loss="mse", seed=0)
check = deltaprop.check_gradient(big, data.X, data.y)
check_dirs = deltaprop.check_gradient(big, data.X, data.y, directions=10)
print(f"P = {big.n_params}:", check)
print(f"{check_dirs.numeric.size} random directions:", check_dirs)
check_error, check_dirs_error = check.max_rel_error, check_dirs.max_rel_error
'''


def figure_differences(ns: dict) -> Figure:
    """Error of forward and central differences against ε, with the fitted slopes."""
    fig = new_figure(6.5, 4.2)
    ax = fig.add_subplot()
    eps = ns["eps"]
    for name, err, colour, (lo, hi), s in (
        ("forward", ns["err_fwd"], "tab:red", (1e-6, 1e-2), ns["slope_fwd"]),
        ("central", ns["err_cen"], "tab:blue", (1e-4, 1e-2), ns["slope_cen"]),
    ):
        ax.loglog(eps, err, "o-", color=colour, markersize=3, label=f"{name} differences")
        keep = (eps >= lo) & (eps <= hi)
        fit = np.polyfit(np.log10(eps[keep]), np.log10(err[keep]), 1)
        ax.loglog(eps[keep], 10 ** np.polyval(fit, np.log10(eps[keep])), "--", color="black",
                  linewidth=1)
        ax.annotate(f"slope {s:.2f}", (eps[keep][-1], err[keep][-1]), textcoords="offset points",
                    xytext=(-60, 8), color=colour)
    u = np.finfo(float).eps
    for value, label in ((u ** 0.5, "√u"), (u ** (1 / 3), "u^(1/3)")):
        ax.axvline(value, color="gray", linestyle=":", linewidth=1)
        ax.text(value, ax.get_ylim()[1], label, ha="center", va="bottom", color="gray")
    ax.set(xlabel="step ε", ylabel="max error / max |∂E/∂w|")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower left")
    return fig


NUMERICAL_TEXT = """\
## 2. Numerical differentiation (§8.1.4)

Backpropagation is exact but easy to get wrong; finite differences are slow but hard to get
wrong, so they check it (§8.1.4; PRML §5.3.3). Forward differences
$[E(w_{ji} + \\epsilon) - E(w_{ji})]/\\epsilon$ have truncation error $O(\\epsilon)$ (PRML eq.
5.68), central differences $[E(w_{ji} + \\epsilon) - E(w_{ji} - \\epsilon)]/(2\\epsilon)$ only
$O(\\epsilon^2)$ (eq. 5.69), but both lose about $u|E|/\\epsilon$ to round-off, $u$ being the
unit round-off of float64. Below, both are compared with backpropagation on the network of
section 1 ({{small_P}} parameters) for {{n_eps}} steps $\\epsilon$ from {{eps_lo:.0e}} to
{{eps_hi:.0e}}.

"""


def section_numerical(ctx: Context) -> str:
    """§8.1.4: truncation O(ε) and O(ε²), round-off O(u/ε), then check_gradient."""
    code, ns = ctx.run(NUMERICAL_CODE)
    values = ctx.keep(ns, "slope_fwd", "slope_cen", "slope_fwd_round", "slope_cen_round",
                      "best_fwd", "best_cen", "check_error", "check_dirs_error")
    values.update(min_fwd=ns["err_fwd"].min(), min_cen=ns["err_cen"].min(),
                  P=ns["big"].n_params, small_P=ns["net"].n_params, n_eps=ns["eps"].size,
                  eps_lo=ns["eps"][0], eps_hi=ns["eps"][-1], n_dirs=ns["check_dirs"].numeric.size,
                  n_dir_evals=2 * ns["check_dirs"].numeric.size,
                  big_sizes="-".join(map(str, ns["big"].sizes)))
    claim(abs(values["slope_fwd"] - 1) < 0.3 and abs(values["slope_cen"] - 2) < 0.3,
          "the truncation errors fall with slopes 1 and 2")
    claim(max(values["slope_fwd_round"], values["slope_cen_round"]) < -0.5,
          "round-off makes the error grow as ε shrinks")
    closing = """
On the log–log plot the truncation error falls with slope {{slope_fwd:.2f}} (forward) and
{{slope_cen:.2f}} (central), as $O(\\epsilon)$ and $O(\\epsilon^2)$ predict. Below about
$10^{-10}$ round-off takes over and the error *grows* as $\\epsilon$ shrinks (slopes
{{slope_fwd_round:.2f}} and {{slope_cen_round:.2f}}, i.e. $\\propto 1/\\epsilon$). The best steps
balance the two: {{best_fwd:.0e}} for forward differences (error {{min_fwd:.0e}}) and
{{best_cen:.0e}} for central ones (error {{min_cen:.0e}}), near $\\sqrt{u}$ and $u^{1/3}$.
`check_gradient` uses central differences with $\\epsilon = u^{1/3}$ (scaled by the largest
weight): on a {{big_sizes}} network ({{P}} parameters, $2P$ loss evaluations) the worst relative
error is {{check_error:.1e}}, and {{check_dirs_error:.1e}} along {{n_dirs}} random directions
({{n_dir_evals}} evaluations, the cheap check for large networks).

"""
    fig = ctx.figure(figure_differences(ns), "numerical_differences",
                     "Error of finite-difference gradients against the step ε (log–log).")
    return fill(NUMERICAL_TEXT, values) + code + fill(closing, values) + fig


# ---------------------------------------------------------------------------- section 3
JACOBIAN_CODE = '''
import numpy as np
import deltaprop
from deltaprop.curvature import check_jacobian, jacobian_inputs, vjp_inputs
from deltaprop.lm_training import LevenbergMarquardt

data = deltaprop.datasets.load("diabetes")
X = (data.X - data.X.mean(0)) / data.X.std(0)          # standardised inputs and target
T = ((data.y - data.y.mean()) / data.y.std())[:, None]
net = deltaprop.mlp([10, 5, 1], activation="tanh", loss="mse", seed=0)
lm = LevenbergMarquardt(bayesian=True)                 # regularised: see section 5
history = deltaprop.train(net, X, T, lm, epochs={{jac_epochs}})
print(f"trained: mse {history.loss[0]:.3f} -> {history.loss[-1]:.3f} in {history.n_epochs} epochs")

J = jacobian_inputs(net, X)                  # (N, K, D): J[n, k, i] = ∂y_k/∂x_i at x_n
sensitivity = np.abs(J[:, 0, :]).mean(axis=0)
order = np.argsort(sensitivity)[::-1]
print("J:", J.shape, "| mean |∂y/∂x_i|:",
      ", ".join(f"{data.feature_names[i]} {sensitivity[i]:.3f}" for i in order))
top_feature, top_sensitivity = data.feature_names[order[0]], sensitivity[order[0]]

check = check_jacobian(net, X, wrt="inputs")           # central differences in every x_ni
print(check)
jacobian_error = check.max_rel_error

# Jᵀ ∂L/∂y: the backward pass started from any upstream gradient (a vector–Jacobian product)
y = net.forward(X)
dL_dy = 2 * (y - T) / T.size                           # L = mse = Σ (y − t)² / (N K)
vjp = vjp_inputs(net, X, dL_dy)                        # one backward pass, J never formed
via_J = np.einsum("nki,nk->ni", J, dL_dy)              # Jᵀ ∂L/∂y from the full Jacobian
input_grad = net.input_gradient(X, T)                  # ∂L/∂x by net's own backward pass
vjp_error = max(np.abs(vjp - via_J).max(), np.abs(vjp - input_grad).max())
print(f"max |vjp − Jᵀ∂L/∂y|, |vjp − net.input_gradient| = {vjp_error:.1e}")
'''


def section_jacobian(ctx: Context) -> str:
    """§8.1.5: input sensitivities of a trained network and Jᵀ ∂L/∂y."""
    code, ns = ctx.run(JACOBIAN_CODE)
    values = ctx.keep(ns, "jacobian_error", "vjp_error", "top_feature", "top_sensitivity")
    second = ns["order"][1]
    values.update(second_feature=ns["data"].feature_names[second],
                  second_sensitivity=ns["sensitivity"][second], N=ns["X"].shape[0],
                  D=ns["X"].shape[1], sizes="-".join(map(str, ns["net"].sizes)))
    prose = """\
## 3. The Jacobian (§8.1.5)

The Jacobian $J_{ki} = \\partial y_k/\\partial x_i$ (§8.1.5; PRML §5.3.4, eq. 5.70) measures how
sensitive each output is to each input. It is backpropagation started from the output units
instead of the error: $\\partial y_k/\\partial z_L$ is a unit vector for linear outputs, sent back
through the same recursion, one backward pass per output. Here a {{sizes}} tanh network is trained
(by Levenberg–Marquardt with Bayesian regularisation, section 5) to predict disease progression
from the {{D}} standardised baseline variables of scikit-learn's diabetes data, and its Jacobian
is taken at all {{N}} patients.

"""
    closing = """
The most influential inputs, in standard deviations of the target per standard deviation of
the input, are {{top_feature}} ({{top_sensitivity:.2f}}) and {{second_feature}}
({{second_sensitivity:.2f}}). Central differences in every input agree with the backpropagated
Jacobian to a relative {{jacobian_error:.1e}}. The chain rule
$\\partial L/\\partial x = J^\\top \\partial L/\\partial y$ is a *vector–Jacobian product*: one
backward pass from the upstream gradient gives it without forming $J$ (`vjp_inputs`), and it
equals both the product with the full Jacobian and `net.input_gradient` to {{vjp_error:.1e}}.
This one primitive, the backward pass from any upstream gradient, is what the Hessian and
Levenberg–Marquardt machinery below is built from.

"""
    return fill(prose, values) + code + fill(closing, values)


# ---------------------------------------------------------------------------- section 4
HESSIAN_CODE = '''
import time
import numpy as np
import deltaprop
from deltaprop.curvature import (check_hessian, gauss_newton, hessian, hessian_diagonal,
                                 hessian_eigenvalues, hessian_fd, hvp, inverse_hessian_outer)


def best_time(fn, repeat={{repeat}}):        # result and the fastest of `repeat` runs, seconds
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, min(times)


def rel(A, B):                               # relative (Frobenius) error of A against B
    return np.linalg.norm(A - B) / np.linalg.norm(B)


data = deltaprop.datasets.sine(n_samples={{hess_n}}, noise=0.1, seed=0)
X, T = data.X, data.y[:, None]
net = deltaprop.mlp({{hess_sizes}}, activation="tanh", loss="mse", seed=0)
P = net.n_params
G_init, _ = gauss_newton(net, X, T)          # outer product at the random initial weights
gn_error_init = rel(G_init, hessian(net, X, T))
deltaprop.train(net, X, T, "lm", epochs={{hess_epochs}})

H, t_exact = best_time(lambda: hessian(net, X, T))
V = np.random.default_rng(0).normal(size=(P, 10))
HV, t_hvp = best_time(lambda: hvp(net, X, T, V))                 # R-operator, 10 directions
H_fd, t_fd = best_time(lambda: hessian_fd(net, X, T), repeat=1)  # 2P gradients
(G, g), t_gn = best_time(lambda: gauss_newton(net, X, T))       # Σ_n b_n b_nᵀ (scaled JᵀJ)
alpha = 1e-3
H_inv, t_inv = best_time(lambda: inverse_hessian_outer(net, X, T, alpha), repeat=1)
exact_inv = np.linalg.inv(G + alpha * np.eye(P))
rows = [("exact H", "itself", 0.0, t_exact),
        ("R-operator H·V (10 columns)", "H @ V", rel(HV, H @ V), t_hvp),
        ("finite differences of ∇E", "H", rel(H_fd, H), t_fd),
        ("outer product / Gauss-Newton G", "H", rel(G, H), t_gn),
        ("sequential (G + αI)⁻¹", "inv(G + αI)", rel(H_inv, exact_inv), t_inv)]
diagonal, probes = np.diag(H), 100
for method in ("exact", "gauss-newton", "becker-lecun", "hutchinson"):
    d, t = best_time(lambda: hessian_diagonal(net, X, T, method, n_samples=probes, seed=0))
    rows.append((f"diagonal: {method}", "diag H", rel(d, diagonal), t))

print(f"P = {P} parameters, N = {len(X)} samples, at the trained weights")
print(f"{'method':34s} {'compared with':13s} {'rel. error':>10s} {'time [ms]':>10s}")
for name, reference, err, seconds in rows:
    shown = f"{err:10.1e}" if reference != "itself" else f"{'reference':>10s}"
    print(f"{name:34s} {reference:13s} {shown} {1e3 * seconds:10.2f}")
print(f"outer product at the initial weights: rel. error {gn_error_init:.2f}")
errors = {name: err for name, _, err, _ in rows}
check = check_hessian(net, X, T)
print(check)
hessian_check_error = check.max_rel_error

eigenvalues = np.linalg.eigvalsh(H)
lanczos = hessian_eigenvalues(net, X, T, k=4, which="BE")        # Lanczos on H·v only
lanczos_error = np.abs(lanczos - np.r_[eigenvalues[:2], eigenvalues[-2:]]).max()
n_negative = int((eigenvalues < 0).sum())
print(f"eigenvalues: λ_max = {eigenvalues[-1]:.3g}, λ_min = {eigenvalues[0]:.3g}, "
      f"{n_negative} of {P} negative; Lanczos extremes differ by {lanczos_error:.1e}")
deltaprop.plots.plot_eigenvalues(eigenvalues, "figures/hessian_eigenvalues.png")
'''


HESSIAN_TEXT = """\
## 4. The Hessian (§8.1.6)

The Hessian $H = \\nabla\\nabla E$ (§8.1.6; PRML §5.4) governs the local shape of the error
surface. deltaprop computes it exactly, multiplies vectors by it without forming it, and
approximates it, all by passes of backpropagation. On a {{sizes}} tanh network ({{P}}
parameters) trained on the noisy sine:

* **exact** (PRML §5.4.5): second derivatives $\\partial^2 E/\\partial z_l^2$ propagated back
  through every layer, one matrix product per pair of layers;
* **R-operator** (PRML §5.4.6; Pearlmutter 1994): $Hv$ for any $v$ at the cost of about two
  gradients, by differentiating the forward and backward passes along $v$, never forming $H$;
* **finite differences** of backpropagated gradients (PRML eq. 5.90–5.91): $2P$ gradients;
* **outer product** (PRML eq. 5.84): $H \\approx \\sum_n b_n b_n^\\top$, $b_n = \\nabla y_n$ (for
  the mean squared error, scaled by $2/N$): the Gauss–Newton or Levenberg–Marquardt
  approximation, which drops the term $\\sum_n (y_n - t_n)\\nabla\\nabla y_n$; and its inverse
  built one pattern at a time (PRML eq. 5.89);
* **diagonal** approximations (PRML §5.4.1): the exact diagonal, the outer product's,
  Becker & Le Cun's (1989) backward recursion on diagonal terms only (PRML eq. 5.79–5.81), and
  Hutchinson's estimate $\\mathrm{E}[v \\odot Hv]$ over {{probes}} random $\\pm1$ vectors $v$.

"""


def section_hessian(ctx: Context) -> str:
    """§8.1.6: exact Hessian, R-operator, approximations, times and the spectrum."""
    code, ns = ctx.run(HESSIAN_CODE)
    values = ctx.keep(ns, "hessian_check_error", "gn_error_init", "lanczos_error", "n_negative",
                      "errors", "P", "probes")
    err = ns["errors"]
    eig = ns["eigenvalues"]
    values.update(
        hvp_error=err["R-operator H·V (10 columns)"], fd_error=err["finite differences of ∇E"],
        gn_error=err["outer product / Gauss-Newton G"], inv_error=err["sequential (G + αI)⁻¹"],
        diag_exact=err["diagonal: exact"], diag_gn=err["diagonal: gauss-newton"],
        diag_bl=err["diagonal: becker-lecun"], diag_hutch=err["diagonal: hutchinson"],
        lam_max=eig[-1], lam_min=eig[0], neg_ratio=abs(eig[0]) / eig[-1],
        sizes="-".join(map(str, ctx.settings["hess_sizes"])))
    ctx.numbers.update(values)
    claim(values["hvp_error"] < 1e-10 and values["fd_error"] < 1e-6,
          "the R-operator and finite differences agree with the exact Hessian")
    claim(values["gn_error"] < values["gn_error_init"],
          "the outer product is better at the trained than at the initial weights")
    claim(values["diag_gn"] < min(values["diag_bl"], values["diag_hutch"]),
          "the outer product's diagonal beats Becker & Le Cun's and Hutchinson's")
    closing = """
The R-operator reproduces $HV$ to {{hvp_error:.0e}} and finite differences reproduce $H$ to
{{fd_error:.0e}} (`check_hessian`: worst entry {{hessian_check_error:.0e}}), so the exact Hessian
is right. The outer product is a good approximation only near a minimum with small residuals:
its relative error is {{gn_error:.0e}} at the trained weights but {{gn_error_init:.2f}} at the
random initial ones; its sequential inverse matches $(G + \\alpha I)^{-1}$ to {{inv_error:.0e}}.
On the diagonal, the outer product's ({{diag_gn:.0e}}) beats Becker & Le Cun's recursion
({{diag_bl:.2f}}), which ignores the coupling between units of a layer, and Hutchinson's
unbiased estimate with {{probes}} probes ({{diag_hutch:.2f}}). The times are this machine's
(best of a few runs).

The spectrum of the trained network's Hessian spans $\\lambda_{max}$ = {{lam_max:.3g}} to
$\\lambda_{min}$ = {{lam_min:.2g}}: a few stiff directions and many almost flat ones. """
    if values["n_negative"]:
        closing += """{{n_negative}} of the {{P}} eigenvalues are negative, none larger in magnitude
than {{neg_ratio:.0e}} $\\lambda_{max}$: the trained network sits in a nearly flat valley of an
over-parameterised model, not at a strict minimum. """
    else:
        closing += "All are positive: the trained weights are a strict local minimum. "
    closing += """Lanczos iteration on $Hv$ products
alone (`hessian_eigenvalues`, never forming $H$) finds the extreme eigenvalues to
{{lanczos_error:.0e}}.

"""
    fig = ("![Hessian eigenvalues of the trained network](figures/hessian_eigenvalues.png)\n\n"
           "*Eigenvalues of the Hessian of the trained network, largest first (symmetric log "
           "scale), drawn by `deltaprop.plots.plot_eigenvalues`.*\n")
    return fill(HESSIAN_TEXT, values) + code + fill(closing, values) + fig


# ---------------------------------------------------------------------------- section 5
TRAINING_CODE = '''
import numpy as np
import deltaprop
from deltaprop.lm_training import LevenbergMarquardt

noise = 0.1
data = deltaprop.datasets.sine(n_samples={{train_n}}, noise=noise, seed=0)
X, T = data.X, data.y[:, None]
runs = {"GD": (deltaprop.GD(lr=0.1), {{gd_epochs}}),
        "Adam": (deltaprop.Adam(lr=0.01), {{adam_epochs}}),
        "LM": (LevenbergMarquardt(mu=1e-3), {{lm_epochs}})}
histories = {}
for name, (optimizer, epochs) in runs.items():
    net = deltaprop.mlp([1, 20, 20, 1], activation="tanh", loss="mse", seed=0)  # same start
    histories[name] = deltaprop.train(net, X, T, optimizer, epochs=epochs, min_grad=0)
P = net.n_params

target = 1.1 * noise**2                      # mse within 10% of the noise variance
print(f"N = {len(X)}, P = {P}; first epoch with mse ≤ {target:.4f}:")
reached = {}
for name, h in histories.items():
    hit = next((e for e, loss in zip(h.epoch, h.loss) if loss <= target), None)
    reached[name] = None if hit is None else (hit, h.seconds[hit])
    when = "never" if hit is None else f"epoch {hit:5d} after {h.seconds[hit]:6.2f} s"
    print(f"  {name:4s} {when:28s} | final mse {h.loss[-1]:.5f} after {h.n_epochs:5d} "
          f"epochs, {h.seconds[-1]:6.2f} s ({1e3 * h.seconds[-1] / h.n_epochs:.1f} ms/epoch)")
fastest = min(((r[1], name) for name, r in reached.items() if r), default=(0, "none"))[1]

mu = np.array(histories["LM"].step[1:])      # the damping of each accepted step
print("LM damping μ per epoch:", " ".join(f"{m:.0e}" for m in mu))

# Bayesian regularisation: α, β and γ re-estimated after every step
net = deltaprop.mlp([1, 20, 20, 1], activation="tanh", loss="mse", seed=0)
bayes = deltaprop.train(net, X, T, LevenbergMarquardt(bayesian=True), epochs={{bayes_epochs}},
                        min_grad=0)
gamma, alpha, beta = (bayes.extras[key][-1] for key in ("gamma", "alpha", "beta"))
print(f"Bayesian LM: γ = {gamma:.1f} of P = {P}, α = {alpha:.3g}, β = {beta:.4g}, "
      f"noise std 1/√β = {beta**-0.5:.4f} (true {noise})")

# with few data the evidence matters: N = {{small_n}} points, still P = 481 weights
small = deltaprop.datasets.sine(n_samples={{small_n}}, noise=noise, seed=1)
grid = np.linspace(-1, 1, 401)[:, None]
small_runs = {}
for bayesian in (False, True):
    net = deltaprop.mlp([1, 20, 20, 1], activation="tanh", loss="mse", seed=0)
    h = deltaprop.train(net, small.X, small.y, LevenbergMarquardt(bayesian=bayesian),
                        epochs={{small_epochs}}, min_grad=0)
    rmse = np.sqrt(np.mean((net.forward(grid) - np.sin(3 * grid)) ** 2))
    small_runs[bayesian] = (h, rmse, net.forward(grid))
    label = "Bayesian LM" if bayesian else "plain LM   "
    gamma_text = f", γ = {h.extras['gamma'][-1]:.1f}" if bayesian else ""
    print(f"N = {{small_n}}, {label}: training mse {h.loss[-1]:.4f}, "
          f"rms error against sin(3x) {rmse:.3f}{gamma_text}")
rmse_plain, rmse_bayes = small_runs[False][1], small_runs[True][1]
gamma_small = small_runs[True][0].extras["gamma"][-1]
'''


def figure_training(ns: dict) -> Figure:
    """Loss against epochs and against seconds for GD, Adam and LM."""
    fig = new_figure(10.0, 4.0)
    left, right = fig.subplots(1, 2, sharey=True)
    colours = {"GD": "tab:red", "Adam": "tab:orange", "LM": "tab:blue"}
    for name, h in ns["histories"].items():
        epochs, seconds, loss = np.array(h.epoch), np.array(h.seconds), np.array(h.loss)
        left.plot(np.maximum(epochs, 0.8), loss, color=colours[name], label=name)
        right.plot(seconds, loss, color=colours[name], label=name)
    for ax in (left, right):
        ax.axhline(ns["noise"] ** 2, color="gray", linestyle=":", label="noise variance σ²")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    left.set(xscale="log", xlabel="epoch (log scale)", ylabel="training mse",
             title="loss against epochs")
    right.set(xscale="log", xlabel="seconds on this machine (log scale)",
              title="loss against time")
    left.legend()
    return fig


def figure_mu(ns: dict) -> Figure:
    """The Levenberg–Marquardt damping of each accepted step."""
    fig = new_figure(6.0, 3.2)
    ax = fig.add_subplot()
    mu = ns["mu"]
    ax.semilogy(np.arange(1, mu.size + 1), mu, "o-", color="tab:blue")
    ax.set(xlabel="epoch", ylabel="damping μ", title="Levenberg–Marquardt damping per epoch")
    ax.grid(True, which="both", alpha=0.3)
    return fig


def figure_gamma(ns: dict) -> Figure:
    """γ per epoch for the large and small data sets, against P; the small-N fits."""
    fig = new_figure(10.0, 3.8)
    left, right = fig.subplots(1, 2)
    n_large, n_small = len(ns["X"]), len(ns["small"].X)
    for h, label, colour in ((ns["bayes"], f"N = {n_large}", "tab:blue"),
                             (ns["small_runs"][True][0], f"N = {n_small}", "tab:green")):
        gamma = np.array(h.extras["gamma"])
        left.semilogy(np.array(h.epoch)[1:], gamma[1:], "o-", markersize=3, color=colour,
                      label=label)
    left.axhline(ns["P"], color="gray", linestyle=":", label=f"P = {ns['P']}")
    left.set(xlabel="epoch", ylabel="effective number of parameters γ",
             title="γ per epoch (Bayesian LM)")
    left.grid(True, which="both", alpha=0.3)
    left.legend()
    grid = ns["grid"][:, 0]
    right.plot(ns["small"].X[:, 0], ns["small"].y, "k.", label=f"{n_small} training points")
    right.plot(grid, np.sin(3 * grid), color="gray", linestyle=":", label="sin(3x)")
    right.plot(grid, ns["small_runs"][False][2][:, 0], color="tab:red", label="plain LM")
    right.plot(grid, ns["small_runs"][True][2][:, 0], color="tab:green", label="Bayesian LM")
    right.set(xlabel="x", ylabel="y", ylim=(-2.0, 2.0), title=f"fits to N = {n_small} points")
    right.legend(fontsize="small")
    return fig


def flare_ups(loss: list[float]) -> int:
    """How many times the loss rose above twice its lowest value so far."""
    values = np.asarray(loss)
    above = values > 2 * np.minimum.accumulate(values)
    return int(np.sum(above[1:] & ~above[:-1]))


def race_text(ns: dict) -> str:
    """Who reached the target first, the cost per epoch, spikes, and how μ moved."""
    reached, histories = ns["reached"], ns["histories"]
    parts = [f"{name} after {r[0]} epochs ({r[1]:.2f} s)" if r else
             f"{name} not in its {histories[name].n_epochs} epochs" for name, r in reached.items()]
    first = "No method" if ns["fastest"] == "none" else f"{ns['fastest']} was the first to"
    text = (f"\n{first} bring the mean squared error within "
            "{{margin:.0f}}% of the noise variance ({{target:.4f}}): " + "; ".join(parts) + ". ")
    text += """One LM epoch costs far more than a
gradient-descent epoch ({{ms_lm:.0f}} ms against {{ms_gd:.1f}} ms on this machine: it builds
$G$, of size {{P}}×{{P}}, and solves with it once per trial value of $\\mu$)"""
    text += (", yet it needs so few epochs that it also arrives first in seconds. "
             if ns["fastest"] == "LM" else ". ")
    flares = [f"{name}'s {count} times" for name in ("GD", "Adam")
              if (count := flare_ups(histories[name].loss))]
    if flares:
        text += (f"The loss flared up (above twice its lowest value so far): {', '.join(flares)}; "
                 "a fixed learning rate now and then overshoots along a direction of high "
                 "curvature. ")
    claim(bool(np.all(np.diff(histories["LM"].loss) <= 0)), "LM never increases the error")
    return text + """LM's error never increases, because it rejects every step that would raise it.

The damping moved between {{mu_min:.0e}} and {{mu_max:.0e}} over {{lm_epochs}} epochs (from
{{mu_first:.0e}} to {{mu_last:.0e}}). Each epoch starts from {{mu_dec:g}} times the last
accepted $\\mu$. A flat stretch in the plot means that, epoch after epoch, that first trial was
rejected and the second, back at $\\mu$, accepted; a drop means the first trial succeeded (the
quadratic model is trusted more and the steps approach Gauss–Newton steps); a rise, that
several trials failed.

"""


BAYES_TEXT = """
**Bayesian regularisation** (MacKay 1992; Foresee & Hagan 1997; PRML §5.7.3) minimises
$\\beta E_D + \\alpha E_W$, $E_D = \\tfrac12\\sum_n (y_n - t_n)^2$,
$E_W = \\tfrac12\\lVert w\\rVert^2$, and after each step re-estimates the hyperparameters from
the evidence: $\\gamma = P - \\alpha\\,\\mathrm{tr}(\\beta J^\\top J + \\alpha I)^{-1}$,
$\\alpha = \\gamma/\\lVert w\\rVert^2$, $\\beta = (N - \\gamma)/\\sum_n (y_n - t_n)^2$. The
*effective number of parameters* $\\gamma$ counts the directions in weight space that the data
determine. With $N$ = {{N}} points it ends at {{gamma:.1f}} of the network's {{P}} parameters,
and $1/\\sqrt\\beta$ = {{noise_std:.4f}} estimates the noise level {{noise}}. (The first value
plotted, $\\min(P, N)/2$ = {{gamma_start:g}}, is the re-estimation's starting guess, not an
estimate.) With only {{small_n}} points and the same {{P}} weights, plain LM ends at training
mse {{mse_plain:.4f}} and rms error {{rmse_plain:.3f}} against the noise-free $\\sin(3x)$;
Bayesian LM, with {{gamma_small:.1f}} effective parameters, at training mse {{mse_bayes:.4f}} and
rms error {{rmse_bayes:.3f}}.{{verdict}}

"""


TRAINING_TEXT = """\
## 5. Gradient descent against Levenberg–Marquardt

Gradient descent uses the gradient alone, $w \\leftarrow w - \\eta\\nabla E$. The
Levenberg–Marquardt method (PRML §5.4.2; Marquardt 1963; Hagan & Menhaj 1994) also uses the
outer-product approximation $G$ of section 4 and solves, at every epoch,
$(G + \\mu I)\\,\\Delta w = -\\nabla E$: a Gauss–Newton step when the damping $\\mu$ is
small, a short gradient step when it is large. A trial step that does not lower $E$ is
rejected and $\\mu$ multiplied by {{mu_inc:g}}; an accepted one multiplies it by {{mu_dec:g}}. The
same {{sizes}} tanh
network, from the same initial weights, is trained on $N$ = {{N}} points of $\\sin(3x)$ plus
Gaussian noise of standard deviation {{noise}}, full batch, by gradient descent, Adam and
Levenberg–Marquardt. The lowest mean squared error to expect is the noise variance, {{variance:g}}.

"""


def section_training(ctx: Context) -> str:
    """GD, Adam and LM on one problem; μ per epoch; Bayesian regularisation and γ."""
    code, ns = ctx.run(TRAINING_CODE)
    values = ctx.keep(ns, "fastest", "gamma", "alpha", "beta", "P", "rmse_plain", "rmse_bayes",
                      "gamma_small", "target", "noise")
    lm = ns["runs"]["LM"][0]
    values.update(variance=ns["noise"] ** 2, margin=100 * (ns["target"] / ns["noise"] ** 2 - 1),
                  mu_inc=lm.mu_inc, mu_dec=lm.mu_dec, sizes="-".join(map(str, ns["net"].sizes)))
    h, small = ns["histories"], ns["small_runs"]
    values.update(
        noise_std=ns["beta"] ** -0.5, N=len(ns["X"]), small_n=len(ns["small"].X),
        mu_first=ns["mu"][0], mu_last=ns["mu"][-1], mu_min=ns["mu"].min(),
        mu_max=ns["mu"].max(), lm_epochs=h["LM"].n_epochs,
        ms_gd=1e3 * h["GD"].seconds[-1] / h["GD"].n_epochs,
        ms_lm=1e3 * h["LM"].seconds[-1] / h["LM"].n_epochs,
        gamma_start=ns["bayes"].extras["gamma"][1],
        mse_plain=small[False][0].loss[-1], mse_bayes=small[True][0].loss[-1],
        verdict=(" The regularised network is the one closer to the true curve."
                 if ns["rmse_bayes"] < ns["rmse_plain"] else ""),
        final_loss={name: hist.loss[-1] for name, hist in h.items()})
    ctx.numbers.update(values)
    claim(values["gamma_start"] == min(values["P"], values["N"]) / 2,
          "the first γ is the starting guess min(P, N)/2")
    claim(abs(values["noise_std"] / values["noise"] - 1) < 0.3, "1/√β estimates the noise level")
    claim(bool(np.isclose(lm.mu_inc * lm.mu_dec, 1.0)), "a rejected first trial returns to μ")
    figures = [
        ctx.figure(figure_training(ns), "training_loss",
                   "Training mse against epochs and against seconds on this machine."),
        ctx.figure(figure_mu(ns), "lm_damping", "The damping μ of each accepted LM step."),
        ctx.figure(figure_gamma(ns), "bayesian_gamma",
                   "Left: γ per epoch against P. Right: plain and Bayesian LM on few points."),
    ]
    return (fill(TRAINING_TEXT, values) + code + "\n" + figures[0] + fill(race_text(ns), values)
            + figures[1] + fill(BAYES_TEXT, values) + figures[2])


SECTIONS: tuple[Callable[[Context], str], ...] = (
    section_forward, section_numerical, section_jacobian, section_hessian, section_training)


# ---------------------------------------------------------------------------- entry points
def build(out: Path, quick: bool = False) -> dict:
    """Write ``out``/tutorial.md and ``out``/figures/*.png; return the reported numbers.

    Parameters
    ----------
    out : Path
        Output folder (created if needed).
    quick : bool
        Use the QUICK sizes (seconds) instead of FULL (minutes).

    Returns
    -------
    dict
        The numbers quoted in the text, by name (slopes, errors, γ, ...), plus ``seconds``
        per section.
    """
    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    ctx = Context(QUICK if quick else FULL, out / "figures")
    parts, seconds = [header(ctx)], {}
    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
        for section in SECTIONS:
            start = time.perf_counter()
            parts.append(section(ctx))
            seconds[section.__name__] = time.perf_counter() - start
    (out / "tutorial.md").write_text("\n".join(parts), encoding="utf-8")
    ctx.numbers["seconds"] = seconds
    return ctx.numbers


def main(argv: list[str] | None = None) -> int:
    """Command line: ``make_tutorial.py [--quick] [--out DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for tests")
    parser.add_argument("--out", type=Path, default=DOCS, help="output folder (default: docs/)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    numbers = build(args.out, quick=args.quick)
    for name, seconds in numbers["seconds"].items():
        print(f"{name:20s} {seconds:7.1f} s")
    print(f"wrote {args.out / 'tutorial.md'} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
