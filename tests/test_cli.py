"""The deltaprop command: end to end through ``python -m deltaprop``, every error case, Ctrl-C.

End-to-end flows run in a subprocess, as a user would; the many error cases call ``main``
in-process (the same code path, minus 1-2 s of interpreter start-up each), and a few of them
are repeated through a subprocess to prove that nothing else reaches the terminal.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import deltaprop
from deltaprop import cli, datasets
from deltaprop.estimator_io import load_estimator
from deltaprop.model_io import save_model

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: One BLAS thread in the child processes: these small problems gain nothing from threads,
#: and lose much when the test machine is busy.
CHILD_ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
             "MKL_NUM_THREADS": "1"}


# ---------------------------------------------------------------------- helpers
def run(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m deltaprop ARGS`` in ``cwd``."""
    return subprocess.run([sys.executable, "-m", "deltaprop", *args], cwd=cwd, env=CHILD_ENV,
                          capture_output=True, text=True, timeout=timeout)


def call(capsys, *args: str) -> tuple[int, str, str]:
    """``main(args)`` in-process: (status, stdout, stderr)."""
    status = cli.main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status: int, err: str, *fragments: str) -> None:
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.rstrip("\n").split("\n")
    assert len(lines) == 1, err
    assert lines[0].startswith("deltaprop: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and \
        path.read_bytes()[:8] == PNG_MAGIC


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def diabetes_csv(work) -> Path:
    data = datasets.load("diabetes")
    rows = [[*map(repr, x.tolist()), repr(float(t))] for x, t in zip(data.X, data.y, strict=True)]
    return write_csv(work / "diabetes.csv", [*data.feature_names, "progression"], rows)


@pytest.fixture(scope="module")
def wine_csv(work) -> Path:
    """Wine with text class labels in the last column."""
    data = datasets.load("wine")
    rows = [[*map(repr, x.tolist()), f"cultivar_{c}"] for x, c in zip(data.X, data.y,
                                                                       strict=True)]
    return write_csv(work / "wine.csv", [*data.feature_names, "cultivar"], rows)


@pytest.fixture(scope="module")
def small_csv(work) -> Path:
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (40, 2))
    y = np.sin(2 * X[:, 0]) + X[:, 1]
    return write_csv(work / "small.csv", ["a", "b", "y"],
                     [[repr(float(a)), repr(float(b)), repr(float(t))]
                      for (a, b), t in zip(X, y, strict=True)])


@pytest.fixture(scope="module")
def model(work, diabetes_csv) -> Path:
    """A quickly trained regression model (Adam, 20 epochs) of the diabetes CSV."""
    path = work / "adam.npz"
    status = cli.main(["train", "--data", str(diabetes_csv), "--target", "progression",
                       "--solver", "adam", "--epochs", "20", "--quiet", "--json",
                       "--out", str(path)])
    assert status == 0
    return path


@pytest.fixture(scope="module")
def wine_model(work, wine_csv) -> Path:
    path = work / "wine.npz"
    status = cli.main(["train", "--data", str(wine_csv), "--target", "cultivar", "--solver",
                       "adam", "--epochs", "300", "--quiet", "--json", "--out", str(path)])
    assert status == 0
    return path


# ---------------------------------------------------------------------- end to end
def test_default_train_predict_evaluate_inspect(work, diabetes_csv):
    """The default run (diabetes, LM, 70/15/15, progress bar) and the model's whole life."""
    done = run("train", "--out", "default.npz", cwd=work)
    assert done.returncode == 0, done.stderr
    assert "stop reason: " in done.stdout and "solver lm" in done.stdout
    for word in ("train", "validation", "test", "MSE", "R²"):
        assert word in done.stdout
    assert "train:" in done.stderr and "epoch" in done.stderr  # the tqdm bar
    assert "Traceback" not in done.stderr

    pred = run("predict", "--model", "default.npz", "--data", str(diabetes_csv), cwd=work)
    assert pred.returncode == 0, pred.stderr
    rows = list(csv.reader(io.StringIO(pred.stdout)))
    assert rows[0] == ["progression"] and len(rows) == 443
    est, _ = load_estimator(work / "default.npz")
    data = datasets.load("diabetes")
    np.testing.assert_array_equal([float(r[0]) for r in rows[1:]], est.predict(data.X))

    ev = run("evaluate", "--model", "default.npz", "--data", str(diabetes_csv), "--json",
             cwd=work)
    assert ev.returncode == 0, ev.stderr
    metrics = json.loads(ev.stdout)["metrics"]
    assert metrics["rows"] == 442 and 0 < metrics["r2"] < 1

    ins = run("inspect", "--model", "default.npz", "--data", str(diabetes_csv), cwd=work)
    assert ins.returncode == 0, ins.stderr
    for word in ("10-10-1", "parameters: 121", "top Hessian eigenvalues", "gradient norm",
                 "condition estimate", "validation stopped improving"):
        assert word in ins.stdout


def test_train_json_plot_quiet(work, small_csv):
    done = run("train", "--data", str(small_csv), "--target", "y", "--solver", "adam",
               "--epochs", "30", "--json", "--quiet", "--plot", "small", "--out", "small.npz",
               cwd=work)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    report = json.loads(done.stdout)
    assert report["task"] == "regression" and report["features"] == ["a", "b"]
    assert report["epochs"] == 30 and report["stop_reason"] == "max epochs"
    assert set(report["metrics"]) == {"train", "validation", "test"}
    assert sum(m["rows"] for m in report["metrics"].values()) == 40
    assert report["model"] == "small.npz" and is_png(work / "small_loss.png")
    assert is_png(work / "small_regression.png")


def test_classification_with_text_labels(capsys, work, wine_csv, wine_model):
    status, out, _ = call(capsys, "evaluate", "--model", str(wine_model), "--data",
                          str(wine_csv), "--json")
    assert status == 0
    assert json.loads(out)["metrics"]["accuracy"] > 0.9
    status, out, _ = call(capsys, "predict", "--model", str(wine_model), "--data", str(wine_csv))
    labels = [row[0] for row in csv.reader(io.StringIO(out))]
    assert labels[0] == "cultivar" and set(labels[1:]) <= {f"cultivar_{c}" for c in range(3)}
    status, out, _ = call(capsys, "inspect", "--model", str(wine_model), "--json")
    summary = json.loads(out)
    assert summary["task"] == "classification"
    assert summary["classes"] == ["cultivar_0", "cultivar_1", "cultivar_2"]


def test_builtin_classification_plots_confusion(capsys, work):
    status, out, _ = call(capsys, "train", "--dataset", "wine", "--solver", "adam", "--epochs",
                          "30", "--quiet", "--plot", str(work / "wine"))
    assert status == 0
    assert "accuracy" in out and "classification" in out
    assert is_png(work / "wine_loss.png") and is_png(work / "wine_confusion.png")


def test_auto_task_detection(capsys, work):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 2))
    rows = [[repr(float(a)), repr(float(b)), int(a > 0) + int(b > 0)] for a, b in X]
    path = write_csv(work / "ints.csv", ["a", "b", "label"], rows)
    status, out, _ = call(capsys, "train", "--data", str(path), "--target", "label",
                          "--solver", "adam", "--epochs", "5", "--quiet", "--json")
    assert status == 0 and json.loads(out)["task"] == "classification"
    status, out, _ = call(capsys, "train", "--data", str(path), "--target", "label", "--task",
                          "regression", "--solver", "adam", "--epochs", "5", "--quiet",
                          "--json")
    assert status == 0 and json.loads(out)["task"] == "regression"


@pytest.mark.parametrize("values, task", [
    (np.repeat(np.arange(3), 20), "classification"),
    (np.repeat(np.arange(3), 4), "regression"),             # fewer than 5 rows per class
    (np.arange(60) % 25, "regression"),                     # more than 20 values
    (np.repeat([0.5, 1.5], 30), "regression"),              # not integers
    (np.repeat(np.array(["x", "y"]), 2), "classification"),  # text labels
])
def test_auto_task_rule(values, task):
    assert cli._auto_task(values, 1)[0] == task


def test_multi_target_regression(capsys, work):
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, (50, 3))
    rows = [[*map(repr, x.tolist()), repr(float(x[0] + x[1])), repr(float(x[2] ** 2))]
            for x in X]
    path = write_csv(work / "two.csv", ["a", "b", "c", "u", "v"], rows)
    out_model = work / "two.npz"
    status, _, _ = call(capsys, "train", "--data", str(path), "--target", "u", "--target", "v",
                          "--solver", "adam", "--epochs", "10", "--quiet", "--out",
                          str(out_model))
    assert status == 0
    preds = work / "two_preds.csv"
    status, _, _ = call(capsys, "predict", "--model", str(out_model), "--data", str(path),
                        "--out", str(preds))
    assert status == 0
    rows = list(csv.reader(io.StringIO(preds.read_text())))
    assert rows[0] == ["u", "v"] and len(rows) == 51 and len(rows[1]) == 2


def test_inspect_curvature_matches_the_dense_hessian(capsys, work, model, diabetes_csv):
    status, out, _ = call(capsys, "inspect", "--model", str(model), "--data", str(diabetes_csv),
                          "--json", "--plot", str(work / "spectrum"))
    assert status == 0
    c = json.loads(out)["curvature"]
    est, _ = load_estimator(model)
    data = datasets.load("diabetes")
    X = (data.X - est.x_mean_) / est.x_scale_
    T = ((data.y - est.y_mean_) / est.y_scale_).reshape(-1, 1)
    lam = np.linalg.eigvalsh(deltaprop.curvature.hessian(est.net_, X, T))
    np.testing.assert_allclose(c["top_eigenvalues"], lam[::-1][:6], rtol=1e-8, atol=1e-10)
    assert c["smallest_eigenvalue"] == pytest.approx(lam[0], rel=1e-8, abs=1e-10)
    assert c["loss"] == pytest.approx(est.net_.loss(X, T))
    assert c["negative_eigenvalues"] == int(np.sum(lam < 0)) and c["complete_spectrum"]
    assert (c["condition_estimate"] is None) == (lam[0] <= 0)
    assert is_png(work / "spectrum_eigenvalues.png")


def test_datasets_lists_the_builtins(work):
    done = run("datasets", cwd=work)
    assert done.returncode == 0
    for name, task, _, _ in datasets.list_datasets():
        assert name in done.stdout and task in done.stdout


def test_datasets_json(capsys):
    status, out, _ = call(capsys, "datasets", "--json")
    doc = json.loads(out)
    assert status == 0 and doc["default"] == "diabetes"
    assert [d["name"] for d in doc["datasets"]] == [r[0] for r in datasets.list_datasets()]


def test_console_script_is_the_same_command(work):
    script = shutil.which("deltaprop")
    if script is None:
        pytest.skip("the console script is not installed (pip install -e .)")
    done = subprocess.run([script, "datasets"], cwd=work, env=CHILD_ENV, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "diabetes" in done.stdout


# ---------------------------------------------------------------------- bad input files
@pytest.fixture(scope="module")
def bad(work, model) -> dict[str, Path]:
    """Malformed CSV and model files, by name."""
    d = work / "bad"
    d.mkdir()
    files = {
        "empty": "", "header_only": "a,b,y\n", "nonnumeric": "a,b,y\n1,2,3\n4,abc,6\n",
        "ragged": "a,b,y\n1,2,3\n4,5\n", "nan": "a,b,y\n1,2,3\nnan,5,6\n",
        "inf": "a,b,y\n1,2,3\n4,-inf,6\n", "emptycell": "a,b,y\n1,,3\n",
        "duplicate": "a,a,y\n1,2,3\n", "nan_target": "a,b,y\n1,2,3\n4,5,NaN\n",
    }
    paths = {}
    for name, text in files.items():
        paths[name] = d / f"{name}.csv"
        paths[name].write_text(text)
    paths["binary"] = d / "binary.csv"
    paths["binary"].write_bytes(b"a,b,y\n\xff\xfe\x00\x81,2,3\n")
    paths["directory"] = d / "folder.csv"
    paths["directory"].mkdir()
    paths["missing"] = d / "nope.csv"
    paths.update(_bad_models(d, model))
    return paths


def _rewrite(src: Path, dst: Path, change) -> Path:
    with np.load(src, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    document = json.loads(arrays["model"].tobytes())
    change(document)
    arrays["model"] = np.frombuffer(json.dumps(document).encode(), dtype=np.uint8)
    np.savez(dst, **arrays)
    return dst


def _bad_models(d: Path, model: Path) -> dict[str, Path]:
    raw = model.read_bytes()
    paths = {"truncated": d / "truncated.npz", "flipped": d / "flipped.npz"}
    paths["truncated"].write_bytes(raw[: len(raw) // 2])
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0xFF  # inside W0's data: the zip CRC no longer matches
    paths["flipped"].write_bytes(bytes(flipped))
    paths["version"] = _rewrite(model, d / "version.npz",
                                lambda doc: doc.update(format_version=99))
    paths["tampered"] = _rewrite(model, d / "tampered.npz",
                                 lambda doc: doc["metadata"].update(x_mean=[0.0]))
    paths["pickled"] = d / "pickled.npz"
    np.savez(paths["pickled"], model=np.array([{"a": 1}, None], dtype=object))
    paths["network_only"] = d / "network.npz"
    save_model(paths["network_only"], deltaprop.mlp([10, 3, 1], seed=0))
    return paths


# Each case: (argv template, fragments the one-line message must contain).  {name} is
# replaced by the path of bad[name]; {model}, {diabetes}, {wine_model}, {wine} likewise.
ERROR_CASES = {
    "missing csv": (["train", "--data", "{missing}", "--target", "y"], ["nope.csv",
                                                                        "no such file"]),
    "directory": (["train", "--data", "{directory}", "--target", "y"], ["is a directory"]),
    "empty": (["train", "--data", "{empty}", "--target", "y"], ["empty.csv", "is empty"]),
    "header only": (["train", "--data", "{header_only}", "--target", "y"],
                    ["header but no data rows"]),
    "non-numeric": (["train", "--data", "{nonnumeric}", "--target", "y"],
                    ["nonnumeric.csv", "line 3", "column 'b'", "'abc' is not a number"]),
    "ragged": (["train", "--data", "{ragged}", "--target", "y"],
               ["line 3 has 2 fields but the header has 3"]),
    "nan": (["train", "--data", "{nan}", "--target", "y"],
            ["line 3", "column 'a'", "not a finite number"]),
    "inf": (["train", "--data", "{inf}", "--target", "y"], ["line 3", "column 'b'", "finite"]),
    "nan target": (["train", "--data", "{nan_target}", "--target", "y", "--task",
                    "regression"], ["line 3", "column 'y'", "finite"]),
    "nan target auto": (["train", "--data", "{nan_target}", "--target", "y"],
                        ["line 3", "column 'y'", "finite"]),
    "nan label": (["train", "--data", "{nan_target}", "--target", "y", "--task",
                   "classification"], ["line 3", "column 'y'", "finite"]),
    "empty cell": (["train", "--data", "{emptycell}", "--target", "y"],
                   ["line 2", "column 'b'", "empty cell"]),
    "binary": (["train", "--data", "{binary}", "--target", "y"], ["not UTF-8"]),
    "duplicate header": (["train", "--data", "{duplicate}", "--target", "y"],
                         ["'a' appears twice"]),
    "unknown target": (["train", "--data", "{diabetes}", "--target", "zz"],
                       ["no column 'zz'", "'age'", "'progression'"]),
    "hidden 10,x": (["train", "--hidden", "10,x"], ["--hidden", "'10,x'"]),
    "hidden 0": (["train", "--hidden", "0"], ["--hidden"]),
    "val-split 1.5": (["train", "--val-split", "1.5"], ["--val-split", "'1.5'"]),
    "test-split -0.1": (["train", "--test-split", "-0.1"], ["--test-split"]),
    "splits sum": (["train", "--val-split", "0.6", "--test-split", "0.5"],
                   ["no training rows"]),
    "epochs 0": (["train", "--epochs", "0"], ["--epochs", "'0'"]),
    "epochs 2.5": (["train", "--epochs", "2.5"], ["--epochs"]),
    "seed -1": (["train", "--seed", "-1"], ["--seed"]),
    "solver": (["train", "--solver", "lbfgs"], ["--solver", "lbfgs"]),
    "activation": (["train", "--activation", "softmax"], ["--activation"]),
    "data without target": (["train", "--data", "{diabetes}"], ["--target"]),
    "target without data": (["train", "--target", "y"], ["--target applies to --data"]),
    "data and dataset": (["train", "--data", "{diabetes}", "--dataset", "wine"], ["--dataset"]),
    "unknown dataset": (["train", "--dataset", "nope"], ["unknown dataset 'nope'", "diabetes"]),
    "task conflicts": (["train", "--dataset", "wine", "--task", "regression"],
                       ["classification problem"]),
    "two classification targets": (["train", "--data", "{diabetes}", "--target", "age",
                                    "--target", "sex", "--task", "classification"],
                                   ["exactly one --target"]),
    "out is a directory": (["train", "--out", "{directory}"], ["--out", "is a directory"]),
    "unknown command": (["fly"], ["invalid choice", "'fly'"]),
    "no command": ([], ["choose a command"]),
    "predict without model": (["predict", "--data", "{diabetes}"], ["--model"]),
    "missing model": (["predict", "--model", "{missing}", "--data", "{diabetes}"],
                      ["nope.csv", "no such file"]),
    "model is a directory": (["evaluate", "--model", "{directory}", "--data", "{diabetes}"],
                             ["is a directory"]),
    "model is a csv": (["predict", "--model", "{diabetes}", "--data", "{diabetes}"],
                       ["not an .npz archive"]),
    "truncated model": (["predict", "--model", "{truncated}", "--data", "{diabetes}"],
                        ["truncated.npz", "truncated or corrupt"]),
    "flipped model": (["predict", "--model", "{flipped}", "--data", "{diabetes}"],
                      ["flipped.npz", "corrupt"]),
    "tampered model": (["predict", "--model", "{tampered}", "--data", "{diabetes}"],
                       ["tampered.npz", "x_mean"]),
    "version": (["inspect", "--model", "{version}"], ["format version 99"]),
    "pickled": (["predict", "--model", "{pickled}", "--data", "{diabetes}"],
                ["pickled.npz", "pickled object"]),
    "network only": (["inspect", "--model", "{network_only}"], ["no estimator"]),
    "features missing": (["predict", "--model", "{model}", "--data", "{nonnumeric}"],
                         ["lacks column(s) 'age'"]),
    "target missing": (["evaluate", "--model", "{model}", "--data", "{header_only}"],
                       ["header but no data rows"]),
    "unknown label": (["evaluate", "--model", "{wine_model}", "--data", "{wine_relabelled}"],
                      ["line 2", "column 'cultivar'", "'cultivar_9'", "not one of"]),
    "plot without data": (["inspect", "--model", "{model}", "--plot", "x"], ["--plot needs"]),
}


@pytest.fixture(scope="module")
def paths(bad, model, diabetes_csv, wine_model, wine_csv, work) -> dict[str, str]:
    relabelled = work / "wine_relabelled.csv"
    relabelled.write_text(wine_csv.read_text().replace("cultivar_0", "cultivar_9", 1))
    return {**{k: str(v) for k, v in bad.items()}, "model": str(model),
            "diabetes": str(diabetes_csv), "wine_model": str(wine_model),
            "wine": str(wine_csv), "wine_relabelled": str(relabelled)}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_error_cases_exit_2_with_one_line(capsys, paths, case):
    argv, fragments = ERROR_CASES[case]
    status, out, err = call(capsys, *[a.format(**paths) for a in argv])
    assert_one_line_error(status, err, *fragments)
    assert out == ""


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root reads files without read permission")
def test_unreadable_file(capsys, work):
    path = work / "secret.csv"
    path.write_text("a,y\n1,2\n")
    path.chmod(0)
    try:
        status, _, err = call(capsys, "train", "--data", str(path), "--target", "y")
    finally:
        path.chmod(0o600)
    assert_one_line_error(status, err, "secret.csv", "cannot read")


@pytest.mark.parametrize("case", ["missing csv", "hidden 10,x", "pickled", "no command"])
def test_error_cases_through_a_process(work, paths, case):
    argv, fragments = ERROR_CASES[case]
    done = run(*[a.format(**paths) for a in argv], cwd=work)
    assert_one_line_error(done.returncode, done.stderr, *fragments)


def test_internal_error_is_one_line_exit_1(capsys, monkeypatch):
    def broken(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "cmd_datasets", broken)
    monkeypatch.delenv("DELTAPROP_DEBUG", raising=False)
    status, _, err = call(capsys, "datasets")
    assert status == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("deltaprop: internal error: RuntimeError: boom")
    monkeypatch.setenv("DELTAPROP_DEBUG", "1")
    status, _, err = call(capsys, "datasets")
    assert status == 1 and "Traceback" in err


# ---------------------------------------------------------------------- Ctrl-C
@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_saves_the_best_model_so_far(work, diabetes_csv):
    """SIGINT during training: the best model is saved, said so, and the status is 130."""
    out = work / "interrupted.npz"
    proc = subprocess.Popen(
        [sys.executable, "-m", "deltaprop", "train", "--solver", "sgd", "--epochs", "100000000",
         "--val-split", "0", "--out", str(out)], cwd=work, env=CHILD_ENV, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    seen, deadline = b"", time.monotonic() + 60
    while b"epoch" not in seen and time.monotonic() < deadline:  # the progress bar is up
        seen += os.read(proc.stderr.fileno(), 4096)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    stderr = (seen + stderr).decode()
    assert proc.returncode == 130, (proc.returncode, stderr[-3000:])
    assert "deltaprop: interrupted: saved the best model so far" in stderr
    assert "Traceback" not in stderr
    assert "stop reason: interrupted" in stdout.decode()
    est, info = load_estimator(out)
    assert info["training"]["stop_reason"] == "interrupted" and est.n_iter_ > 0
    data = datasets.load("diabetes")
    assert np.all(np.isfinite(est.predict(data.X)))


def test_trainbr_reports_validation_rows_but_stops_on_the_evidence(diabetes_csv, capsys):
    status = cli.main(["train", "--data", str(diabetes_csv), "--target", "progression",
                       "--solver", "trainbr", "--quiet", "--json"])
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    assert report["stop_reason"] != "validation stopped improving"
    assert report["metrics"]["validation"]["rows"] > 0


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM to a child process is POSIX")
def test_sigterm_saves_the_best_model_so_far(work):
    """SIGTERM exited 143 and saved nothing (issue 13, item 8): now as Ctrl-C, status 143."""
    out = work / "terminated.npz"
    proc = subprocess.Popen(
        [sys.executable, "-m", "deltaprop", "train", "--solver", "sgd", "--epochs", "100000000",
         "--val-split", "0", "--out", str(out)], cwd=work, env=CHILD_ENV, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    seen, deadline = b"", time.monotonic() + 60
    while b"epoch" not in seen and time.monotonic() < deadline:
        seen += os.read(proc.stderr.fileno(), 4096)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    stderr = (seen + stderr).decode()
    assert proc.returncode == 143, (proc.returncode, stderr[-3000:])
    assert "deltaprop: terminated: saved the best model so far" in stderr
    assert "Traceback" not in stderr and "stop reason: interrupted" in stdout.decode()
    est, info = load_estimator(out)
    assert info["training"]["stop_reason"] == "interrupted" and est.n_iter_ > 0
    assert [p.name for p in work.iterdir() if p.name.startswith(".")] == []


def test_a_signal_while_the_model_is_saved_waits_for_the_save():
    signals = cli.Signals()
    with signals.deferred():
        signals.handle(signal.SIGTERM, None)  # noted, not raised
    assert signals.received == signal.SIGTERM
    signals.handle(signal.SIGINT, None)  # a later signal: noted only
    fresh = cli.Signals()
    with pytest.raises(KeyboardInterrupt) as info:
        fresh.handle(signal.SIGTERM, None)
    assert info.value.signum == signal.SIGTERM


# ---------------------------------------------------------------------- hardening (issue 13)
@pytest.fixture
def inputs(tmp_path, model, diabetes_csv) -> dict[str, Path]:
    """Private copies of a model and its CSV, with a symbolic and a hard link to each."""
    paths = {"model": tmp_path / "m.npz", "data": tmp_path / "d.csv"}
    shutil.copy(model, paths["model"])
    shutil.copy(diabetes_csv, paths["data"])
    for name in ("model", "data"):
        (tmp_path / f"sym_{name}").symlink_to(paths[name])
        os.link(paths[name], tmp_path / f"hard_{name}")
        paths[f"sym_{name}"], paths[f"hard_{name}"] = (tmp_path / f"sym_{name}",
                                                       tmp_path / f"hard_{name}")
    for kind in ("eigenvalues", "loss"):  # --plot PREFIX would write PREFIX_KIND.png
        (tmp_path / f"plot_{kind}.png").symlink_to(paths["data"])
    paths["plot"] = tmp_path / "plot"
    return paths


@pytest.mark.parametrize("argv", [
    ["predict", "--model", "{model}", "--data", "{data}", "--out", "{model}"],
    ["predict", "--model", "{model}", "--data", "{data}", "--out", "{data}"],
    ["predict", "--model", "{model}", "--data", "{data}", "--out", "{sym_model}"],
    ["predict", "--model", "{model}", "--data", "{data}", "--out", "{hard_data}"],
    ["predict", "--model", "{sym_model}", "--data", "{data}", "--out", "{model}"],
    ["train", "--data", "{data}", "--target", "progression", "--out", "{data}"],
    ["train", "--data", "{data}", "--target", "progression", "--out", "{hard_data}"],
    ["train", "--data", "{data}", "--target", "progression", "--plot", "{plot}"],
    ["inspect", "--model", "{model}", "--data", "{data}", "--plot", "{plot}"],
])
def test_an_output_that_names_an_input_is_refused(capsys, inputs, argv):
    """These replaced the input (issue 13, item 3)."""
    before = {name: path.read_bytes() for name, path in inputs.items() if name != "plot"}
    status, _, err = call(capsys, *[a.format(**inputs) for a in argv])
    assert_one_line_error(status, err, "is the same file as", "refusing to overwrite an input")
    assert {name: path.read_bytes() for name, path in inputs.items() if name != "plot"} == before


def test_train_checks_out_and_plot_before_training(capsys, tmp_path, small_csv, monkeypatch):
    """A folder that cannot take the file was found only after training (issue 13, item 4)."""
    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(deltaprop.estimators.MLPRegressor, "fit", no_training)
    long = tmp_path / ("x" * 300)
    for option in ("--out", "--plot"):
        status, _, err = call(capsys, "train", "--data", str(small_csv), "--target", "y",
                              option, str(long))
        assert_one_line_error(status, err, option, "File name too long")
    status, _, err = call(capsys, "train", "--data", str(small_csv), "--target", "y", "--out",
                          str(tmp_path / "m.npz"), "--plot", str(tmp_path / "m.npz")[:-8])
    assert status == 1 and "training started" in err  # the checks passed; training began
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_train_refuses_a_read_only_folder_before_training(capsys, tmp_path, small_csv):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        status, _, err = call(capsys, "train", "--data", str(small_csv), "--target", "y",
                              "--out", str(folder / "m.npz"))
    finally:
        folder.chmod(0o700)
    assert_one_line_error(status, err, "--out", "Permission denied")


def test_predict_out_is_atomic_on_a_full_disk(capsys, tmp_path, model, diabetes_csv,
                                              monkeypatch):
    """A full disk left a truncated predictions file (issue 13, item 4)."""
    out = tmp_path / "preds.csv"
    out.write_text("the previous predictions\n")

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(deltaprop.outputs.os, "fsync", no_space)
    status, _, err = call(capsys, "predict", "--model", str(model), "--data",
                          str(diabetes_csv), "--out", str(out))
    assert_one_line_error(status, err, "--out", "No space left on device")
    assert out.read_text() == "the previous predictions\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds.csv"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is Linux's")
def test_a_network_too_big_for_memory_is_one_line_exit_2(work):
    """--hidden 3000,3000 ended in "internal error: MemoryError" (issue 13, item 8)."""
    import resource

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    done = subprocess.run([sys.executable, "-m", "deltaprop", "train", "--hidden", "3000,3000",
                           "--epochs", "1", "--quiet"], cwd=work, env=CHILD_ENV,
                          preexec_fn=limit_memory, capture_output=True, text=True, timeout=300)
    assert_one_line_error(done.returncode, done.stderr, "memory")
    assert "internal error" not in done.stderr


@pytest.mark.parametrize("error", [MemoryError("Unable to allocate 21.0 GiB"),
                                   type("TooBig", (ValueError, MemoryError), {})("P = 9e6")])
def test_memory_errors_of_inspect_are_one_line_exit_2(capsys, model, diabetes_csv,
                                                     monkeypatch, error):
    def too_big(*args, **kwargs):
        raise error

    monkeypatch.setattr(cli, "hessian_spectrum", too_big)
    status, _, err = call(capsys, "inspect", "--model", str(model), "--data", str(diabetes_csv))
    assert_one_line_error(status, err, "not enough memory", str(error))


NASTY = {"features": ["plain", "red\x1b[31m", "rtl\u202eevil"],
         "classes": ["ok\x1b]0;title\x07", "csi\x9b2J"]}


@pytest.fixture
def nasty_model(tmp_path) -> Path:
    """A classifier whose feature names and class labels hold terminal controls."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.where(X[:, 0] > 0, *NASTY["classes"])
    est = deltaprop.MLPClassifier((3,), solver="adam", max_iter=5, random_state=0).fit(X, y)
    path = tmp_path / "nasty.npz"
    deltaprop.save_estimator(est, path, feature_names=NASTY["features"],
                             target_names=["label\x1b[0m"])
    write_csv(tmp_path / "nasty.csv", [*NASTY["features"], "label\x1b[0m"],
              [[*map(repr, x.tolist()), c] for x, c in zip(X, y, strict=True)])
    return path


def _no_controls(text: str) -> bool:
    return all(c.isprintable() or c == "\n" for c in text)


def test_strings_from_files_are_escaped_on_the_terminal(capsys, nasty_model, monkeypatch):
    """A crafted feature name's escape sequence reached the terminal raw (issue 13, item 9)."""
    status, out, _ = call(capsys, "inspect", "--model", str(nasty_model))
    assert status == 0 and _no_controls(out)
    assert "red\\x1b[31m" in out and "csi\\x9b2J" in out and "rtl\\u202eevil" in out
    status, out, _ = call(capsys, "inspect", "--model", str(nasty_model), "--json")
    assert status == 0 and _no_controls(out)
    doc = json.loads(out)
    assert doc["features"] == NASTY["features"] and doc["classes"] == sorted(NASTY["classes"])
    data = nasty_model.with_suffix(".csv")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    status, out, _ = call(capsys, "predict", "--model", str(nasty_model), "--data", str(data))
    assert status == 0 and _no_controls(out) and "label\\x1b[0m" in out


def test_predictions_to_a_file_keep_the_labels_exactly(capsys, nasty_model):
    data, out = nasty_model.with_suffix(".csv"), nasty_model.with_name("preds.csv")
    status, _, _ = call(capsys, "predict", "--model", str(nasty_model), "--data", str(data),
                        "--out", str(out))
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert status == 0 and rows[0] == ["label\x1b[0m"]
    assert set(r[0] for r in rows[1:]) <= set(NASTY["classes"])


def test_error_messages_escape_names_from_files(capsys, nasty_model, tmp_path):
    data = write_csv(tmp_path / "other.csv", [*NASTY["features"], "label\x1b[0m"],
                     [[1, 2, 3, "unknown"]])
    status, _, err = call(capsys, "evaluate", "--model", str(nasty_model), "--data", str(data))
    assert_one_line_error(status, err, "'unknown' is not one of the model's classes",
                          "ok\\x1b]0;title\\x07")
    assert _no_controls(err)


def _rewrite_meta(src: Path, dst: Path, change) -> Path:
    return _rewrite(src, dst, lambda doc: change(doc["metadata"]))


@pytest.mark.parametrize("change, fragment", [
    (lambda m: m["training"].update(gamma="abc"), "'gamma'"),
    (lambda m: m["params"].update(hidden_layer_sizes=[3]), "hidden_layer_sizes"),
    (lambda m: m.update(feature_names=["age"] * 10), "twice"),
    (lambda m: m.update(target_names=[]), "target_names"),
    (lambda m: m.update(extra=[]), "'extra'"),
    (lambda m: m["extra"].update(metrics={"test": {"rows": "many"}}), "metrics"),
    (lambda m: m.update(x_scale=[1e-320] * 10), "x_scale"),
])
@pytest.mark.parametrize("command", ["inspect", "evaluate", "predict"])
def test_contradicting_metadata_is_one_line_exit_2(capsys, tmp_path, model, diabetes_csv,
                                                    change, fragment, command):
    """These crashed inspect/evaluate/predict with exit 1 (issue 13, item 6)."""
    bad = _rewrite_meta(model, tmp_path / "bad.npz", change)
    argv = [command, "--model", str(bad)]
    argv += [] if command == "inspect" else ["--data", str(diabetes_csv)]
    status, _, err = call(capsys, *argv)
    if fragment == "metrics" and command != "inspect":
        assert status == 0  # only inspect shows the stored metrics
        return
    assert_one_line_error(status, err, "bad.npz", fragment)


def test_big_integer_labels_are_predicted_exactly(capsys, tmp_path):
    """9007199254740993 was printed as 9007199254740992, 1e20 as a negative (item 7)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 2))
    labels = np.where(X[:, 0] > 0, "9007199254740993", "9007199254740992")
    data = write_csv(tmp_path / "big.csv", ["a", "b", "id"],
                     [[a, b, c] for (a, b), c in zip(X.tolist(), labels, strict=True)])
    out = tmp_path / "big.npz"
    status, text, _ = call(capsys, "train", "--data", str(data), "--target", "id", "--task",
                           "classification", "--solver", "adam", "--epochs", "50", "--quiet",
                           "--json", "--out", str(out))
    assert status == 0
    assert json.loads(text)["classes"] == [9007199254740992, 9007199254740993]
    status, text, _ = call(capsys, "predict", "--model", str(out), "--data", str(data))
    assert set(text.split()[1:]) == {"9007199254740992", "9007199254740993"}
    floats = write_csv(tmp_path / "floats.csv", ["a", "b", "id"],
                       [[a, b, "1e20" if a > 0 else "2"] for a, b in X.tolist()])
    status, _, err = call(capsys, "train", "--data", str(floats), "--target", "id", "--task",
                          "classification", "--solver", "adam", "--epochs", "5", "--quiet")
    assert_one_line_error(status, err, "line ", "'1e20' is beyond the 64-bit range")
    status, text, _ = call(capsys, "train", "--data", str(floats), "--target", "id",
                           "--solver", "adam", "--epochs", "5", "--quiet", "--json")
    assert status == 0 and json.loads(text)["task"] == "regression"  # auto: numbers


def test_an_unterminated_quote_is_reported_where_it_opens(capsys, tmp_path):
    path = tmp_path / "quote.csv"
    path.write_text('a,b,y\n1,"2,3\n' + "".join(f"{i},{i},{i}\n" for i in range(60)))
    status, _, err = call(capsys, "train", "--data", str(path), "--target", "y")
    assert_one_line_error(status, err, "line 2, column 'b'", "never closed")


def test_huge_numbers_train_save_and_predict(capsys, tmp_path, small_csv):
    """X·1e200 trained nothing and saved a model that could not be loaded (item 2)."""
    table = list(csv.reader(io.StringIO(small_csv.read_text())))
    rows = [[repr(float(a) * 1e200), repr(float(b) * 1e200), repr(float(y) * 1e300)]
            for a, b, y in table[1:]]
    data = write_csv(tmp_path / "huge.csv", table[0], rows)
    out = tmp_path / "huge.npz"
    status, _, err = call(capsys, "train", "--data", str(data), "--target", "y", "--solver",
                          "lm", "--epochs", "20", "--quiet", "--out", str(out))
    assert status == 0, err
    status, text, _ = call(capsys, "predict", "--model", str(out), "--data", str(data))
    assert status == 0
    pred = np.array([float(v) for v in text.split()[1:]])
    truth = np.array([float(r[2]) for r in rows])
    assert np.all(np.isfinite(pred)) and np.corrcoef(pred / 1e300, truth / 1e300)[0, 1] > 0.9


def test_cascade_topology_from_train_to_inspect(capsys, work, small_csv):
    status, out, err = call(capsys, "train", "--data", str(small_csv), "--target", "y",
                            "--hidden", "4,3", "--topology", "cascade", "--epochs", "20",
                            "--quiet", "--json", "--out", str(work / "cascade.npz"))
    assert status == 0, err
    report = json.loads(out)
    assert report["architecture"]["topology"] == "cascade"
    status, out, err = call(capsys, "inspect", "--model", str(work / "cascade.npz"), "--json")
    assert status == 0, err
    assert json.loads(out)["architecture"]["topology"] == "cascade"
    status, _, err = call(capsys, "train", "--data", str(small_csv), "--target", "y",
                          "--topology", "graph")
    assert status == 2 and "--topology" in err
