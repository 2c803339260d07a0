"""The tutorial cannot rot: ``docs/make_tutorial.py --quick`` runs and its claims hold.

The quick run executes every code block of docs/tutorial.md at small sizes (a few seconds)
and returns the numbers its text quotes; the checks here are the chapter's claims.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import struct
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "make_tutorial.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_script():
    """Import docs/make_tutorial.py as a module (it is not part of the package)."""
    spec = importlib.util.spec_from_file_location("make_tutorial", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script():
    return load_script()


@pytest.fixture(scope="module")
def quick(script, tmp_path_factory):
    """Run the quick tutorial once: (output folder, Markdown text, reported numbers)."""
    out = tmp_path_factory.mktemp("tutorial")
    numbers = script.build(out, quick=True)
    return out, (out / "tutorial.md").read_text(encoding="utf-8"), numbers


def test_main_parses_quick_and_out(script, tmp_path, monkeypatch, capsys):
    calls = []

    def fake_build(out, quick):
        calls.append((out, quick))
        return {"seconds": {"section": 0.0}}

    monkeypatch.setattr(script, "build", fake_build)
    assert script.main(["--quick", "--out", str(tmp_path)]) == 0
    assert calls == [(tmp_path, True)]
    assert "tutorial.md" in capsys.readouterr().out


def test_all_five_sections_in_order(quick):
    _, text, _ = quick
    headings = re.findall(r"^## (\d)\. (.+)$", text, flags=re.MULTILINE)
    assert [number for number, _ in headings] == ["1", "2", "3", "4", "5"]
    titles = " ".join(title for _, title in headings)
    for words in ("δ recursion", "Numerical differentiation", "Jacobian", "Hessian",
                  "Levenberg–Marquardt"):
        assert words in titles


def test_every_placeholder_filled_and_every_code_block_is_python(quick):
    _, text, _ = quick
    assert "{{" not in text and "}}" not in text
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 5
    for block in blocks:
        ast.parse(block)
    assert text.count("```text\n") == 5  # each code block is followed by its output


def test_every_figure_exists_and_is_a_png(quick):
    out, text, _ = quick
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(figures) >= 5
    for figure in figures:
        data = (out / figure).read_bytes()
        assert data[:8] == PNG_SIGNATURE, figure
        assert data[12:16] == b"IHDR", figure
        width, height = struct.unpack(">II", data[16:24])
        assert width > 100 and height > 100, figure


def test_backpropagation_matches_the_hand_computation(quick):
    numbers = quick[2]
    assert numbers["err_grad"] < 1e-12
    assert numbers["err_loss"] < 1e-12
    assert numbers["check_error"] < 1e-6
    assert numbers["check_dirs_error"] < 1e-6


def test_finite_difference_slopes(quick):
    numbers = quick[2]
    assert numbers["slope_fwd"] == pytest.approx(1.0, abs=0.3)
    assert numbers["slope_cen"] == pytest.approx(2.0, abs=0.3)
    assert numbers["slope_fwd_round"] < -0.5
    assert numbers["slope_cen_round"] < -0.5
    assert 1e-10 < numbers["best_fwd"] < 1e-6 and 1e-8 < numbers["best_cen"] < 1e-3


def test_jacobian_and_hessian_checks(quick):
    numbers = quick[2]
    assert numbers["jacobian_error"] < 1e-6
    assert numbers["vjp_error"] < 1e-12
    assert numbers["hessian_check_error"] < 1e-6
    assert numbers["hvp_error"] < 1e-10
    assert numbers["fd_error"] < 1e-6
    assert numbers["inv_error"] < 1e-8
    assert numbers["diag_exact"] < 1e-10
    assert numbers["gn_error"] < numbers["gn_error_init"]
    assert numbers["lanczos_error"] < 1e-6 * abs(numbers["lam_max"])


def test_training_and_bayesian_regularisation(quick):
    numbers = quick[2]
    assert 0 < numbers["gamma"] < numbers["P"]
    assert 0 < numbers["gamma_small"] < numbers["small_n"]
    assert numbers["noise_std"] == pytest.approx(0.1, abs=0.03)
    assert numbers["final_loss"]["LM"] < 1.2 * 0.1**2
    assert numbers["rmse_bayes"] < numbers["rmse_plain"]
