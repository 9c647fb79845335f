"""The array-API module on array_api_strict, NumPy, PyTorch and JAX, against the NumPy module."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
from array_libraries import LIBRARIES, RELATIVE, as_numpy, assert_close, namespace
from conftest import CATALOGUE

from symbp.checks.gradients import load_module_from_source, random_problem
from symbp.render.code.numpy_module import generate_module
from symbp.spec.schema import load_spec
from symbp.symbolic.network import build_network

pytest.importorskip("array_api_compat")

from symbp.render.code.backends.array_api import generate_array_api_module  # noqa: E402


@functools.cache
def _modules(name: str):
    """The NumPy module and the array-API module for a catalogue spec, generated once per session."""
    network = build_network(CATALOGUE[name])
    numpy_module = load_module_from_source(generate_module(network), f"np_{name}")
    array_module = load_module_from_source(generate_array_api_module(network), f"xp_{name}")
    return network.spec, numpy_module, array_module


def _problem(spec, numpy_module):
    X, Y, rng = random_problem(spec, 7, seed=4)
    params = {k: v + rng.normal(scale=0.3, size=v.shape) for k, v in numpy_module.init_params(2).items()}
    return params, X, Y


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("name", list(CATALOGUE))
def test_loss_and_gradient_equal_the_numpy_module(name, library):
    xp = namespace(library)
    spec, numpy_module, array_module = _modules(name)
    params, X, Y = _problem(spec, numpy_module)
    want_value, want_grads = numpy_module.loss_and_grad(params, X, Y)
    arrays = {k: xp.asarray(v, dtype=xp.float64) for k, v in params.items()}
    X_xp, Y_xp = xp.asarray(X, dtype=xp.float64), xp.asarray(Y, dtype=xp.float64)
    # On JAX, the compiled function is the one checked: eager JAX runs the same operations one by one.
    if library == "jax":
        import jax

        value, grads = jax.jit(array_module.loss_and_grad)(arrays, X_xp, Y_xp)
    else:
        value, grads = array_module.loss_and_grad(arrays, X_xp, Y_xp)
    assert_close(value, want_value, "loss_and_grad's loss")
    for param in numpy_module.PARAMS:
        assert_close(grads[param], want_grads[param], f"gradient of {param}")
    assert_close(array_module.loss(arrays, X_xp, Y_xp), numpy_module.loss(params, X, Y), "loss")
    assert_close(array_module.forward(arrays, X_xp), numpy_module.forward(params, X), "forward")

TRAINED = {
    "name": "net", "inputs": 3, "loss": "cross_entropy",
    "layers": [{"units": 4, "activation": "tanh"}, {"units": 3, "activation": "softmax"}],
    "training": {"learning_rate": 0.3, "epochs": 6, "seed": 1},
}


@functools.cache
def _trained_modules():
    spec = load_spec(TRAINED)
    return (load_module_from_source(generate_module(spec), "np_trained"),
            load_module_from_source(generate_array_api_module(spec), "xp_trained"))


def _classification(rows=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 3))
    return X, np.eye(3)[np.argmax(X, axis=1)]


@pytest.mark.parametrize("library", ["numpy", "torch", "jax"])
@pytest.mark.parametrize("optimizer, batch_size", [("gd", None), ("sgd", 16), ("momentum", 16), ("adam", None)])
def test_training_follows_the_numpy_module(library, optimizer, batch_size):
    xp = namespace(library)
    numpy_module, array_module = _trained_modules()
    X, Y = _classification()
    settings = {"optimizer": optimizer, "batch_size": batch_size, "learning_rate": 0.05 if optimizer == "adam" else 0.3}
    want_params, want = numpy_module.train(numpy_module.init_params(1), X, Y, **settings)
    X_xp, Y_xp = xp.asarray(X, dtype=xp.float64), xp.asarray(Y, dtype=xp.float64)
    params, history = array_module.train(array_module.init_params(1, like=X_xp), X_xp, Y_xp, **settings)
    assert history["stopped"] == want["stopped"] == "epochs" and history["best_epoch"] is None
    # The NumPy module folds the learning rate into its error term: the same steps, rounded differently.
    np.testing.assert_allclose(history["loss"], want["loss"], rtol=1e-10)
    for name in numpy_module.PARAMS:
        np.testing.assert_allclose(as_numpy(params[name]), want_params[name], rtol=1e-9, atol=1e-12)


LOGISTIC = {"name": "logistic", "inputs": 2, "loss": "binary_cross_entropy",
            "layers": [{"units": 3, "activation": "sigmoid"}, {"units": 1, "activation": "sigmoid"}]}


@functools.cache
def _logistic_modules():
    spec = load_spec(LOGISTIC)
    return (load_module_from_source(generate_module(spec), "np_logistic"),
            load_module_from_source(generate_array_api_module(spec), "xp_logistic"))


@pytest.mark.parametrize("library, function", [("torch", "torch.sigmoid"), ("jax", "jax.nn.sigmoid")])
def test_the_sigmoid_is_the_librarys_own_function_where_it_has_one(monkeypatch, library, function):
    """One call of the library's logistic function per sigmoid layer, and the NumPy module's values, out to
    pre-activations far past where exp(-z) overflows."""
    xp = namespace(library)
    owner, name = function.rsplit(".", 1)
    owner = pytest.importorskip(owner)
    calls = []
    original = getattr(owner, name)
    monkeypatch.setattr(owner, name, lambda Z: calls.append(Z.shape) or original(Z))
    numpy_module, array_module = _logistic_modules()
    X = np.array([[-800.0, 3.0], [0.5, -2.0], [900.0, 0.0], [-40.0, 40.0]])
    params = {"W1": np.array([[1.0, -1.0, 0.5], [0.25, 2.0, -1.0]]), "b1": np.array([0.1, 0.0, -0.2]),
              "W2": np.array([[3.0], [-2.0], [1.0]]), "b2": np.array([0.5])}
    got = array_module.forward({k: xp.asarray(v) for k, v in params.items()}, xp.asarray(X))
    assert calls == [(4, 3), (4, 1)]
    assert_close(got, numpy_module.forward(params, X), "forward")


def test_elsewhere_the_sigmoid_is_the_numpy_modules_form_which_cannot_overflow():
    xp = namespace("array_api_strict")
    numpy_module, array_module = _logistic_modules()
    X = np.array([[-800.0, 3.0], [900.0, -700.0]])
    params = {k: np.ones_like(v) for k, v in numpy_module.init_params(0).items()}
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        want = numpy_module.forward(params, X)
        got = array_module.forward({k: xp.asarray(v) for k, v in params.items()}, xp.asarray(X))
    assert_close(got, want, "forward")


def test_init_params_draws_the_numpy_modules_numbers_in_the_library_of_like():
    torch = pytest.importorskip("torch")
    numpy_module, array_module = _trained_modules()
    params = array_module.init_params(3, like=torch.zeros(1, dtype=torch.float32))
    for name, value in numpy_module.init_params(3).items():
        assert isinstance(params[name], torch.Tensor) and params[name].dtype == torch.float32
        np.testing.assert_allclose(params[name].numpy(), value, rtol=1e-6)


def _line_problem():
    spec = load_spec({"name": "line", "inputs": 2, "layers": [{"units": 1, "activation": "linear"}]})
    array_module = load_module_from_source(generate_array_api_module(spec), "xp_line")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 2))
    return array_module, X, X @ np.array([[1.0], [-2.0]])


def _diverging_run(array_module, X, Y, batch_size):
    """train with a learning rate that makes the loss overflow: (params, history, the warning's text)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "overflow|invalid", RuntimeWarning)  # NumPy's own, on the way up
        with pytest.warns(RuntimeWarning, match="training stopped at epoch") as caught:
            params, history = array_module.train(array_module.init_params(1, like=X), X, Y, learning_rate=50.0,
                                                 epochs=5000, batch_size=batch_size)
    return params, history, next(str(w.message) for w in caught if "training stopped" in str(w.message))


@pytest.mark.parametrize("batch_size", [None, 8], ids=["full-batch", "mini-batch"])
def test_a_diverging_run_returns_the_last_finite_parameters(batch_size):
    array_module, X, Y = _line_problem()
    params, history, message = _diverging_run(array_module, X, Y, batch_size)
    assert history["stopped"] == "diverged"
    assert np.isfinite(float(array_module.loss(params, X, Y)))
    assert all(np.all(np.isfinite(value)) for value in params.values())
    # Full batch: the loss after step 74 overflows; mini-batch: the loss of the batch of step 77.
    assert message.startswith("training stopped at epoch 73, step 74: the loss became inf." if batch_size is None
                              else "training stopped at epoch 18, step 76: the loss became inf.")


@pytest.mark.parametrize("batch_size", [None, 8], ids=["full-batch", "mini-batch"])
def test_a_diverging_run_on_jax_stops_where_it_does_on_numpy(batch_size):
    """JAX checks the losses after a compiled run of epochs (full batch) or after each epoch (mini-batch): the
    run still stops at the same step, with the same warning and the same last finite parameters."""
    jnp = namespace("jax")
    array_module, X, Y = _line_problem()
    want_params, want, want_message = _diverging_run(array_module, X, Y, batch_size)
    params, history, message = _diverging_run(array_module, jnp.asarray(X), jnp.asarray(Y), batch_size)
    assert message == want_message and history["stopped"] == want["stopped"] == "diverged"
    np.testing.assert_allclose(history["loss"], want["loss"], rtol=RELATIVE)
    for name in array_module.PARAMS:
        np.testing.assert_allclose(as_numpy(params[name]), want_params[name], rtol=RELATIVE)


def _counting_runs_ahead(monkeypatch, array_module, held=None):
    """The lengths of the compiled runs of full-batch epochs that train asks for, as they are asked; the
    transposes of the data that it hands them go into held, when given."""
    lengths, programs = [], array_module._programs

    def counting(*settings):
        first, advance, step, whole_loss, epochs_ahead, batch_steps = programs(*settings)

        def counted(params, state, grads, rates, X, Y, **transposed):
            lengths.append(rates.shape[0])
            if held is not None:
                held.append(transposed["X_T"])
            return epochs_ahead(params, state, grads, rates, X, Y, **transposed)

        return first, advance, step, whole_loss, counted, batch_steps

    monkeypatch.setattr(array_module, "_programs", counting)
    return lengths


def test_full_batch_training_on_jax_holds_the_datas_transpose_as_an_array_of_its_own(monkeypatch):
    """The first layer's weight gradient reads X's transpose, made once for the run: every compiled run of
    epochs gets the same concrete array (XLA reads a transposed operand of a product slowly)."""
    jax = pytest.importorskip("jax")
    jnp = namespace("jax")
    numpy_module, array_module = _trained_modules()
    X, Y = _classification()
    held = []
    _counting_runs_ahead(monkeypatch, array_module, held)
    X_jax, Y_jax = jnp.asarray(X), jnp.asarray(Y)
    array_module.train(array_module.init_params(1, like=X_jax), X_jax, Y_jax, epochs=130)
    assert len(held) == 2 and held[0] is held[1] and isinstance(held[0], jax.Array)
    np.testing.assert_array_equal(np.asarray(held[0]), X.T)
    params = array_module.init_params(2, like=X_jax)
    want_value, want_grads = numpy_module.loss_and_grad(numpy_module.init_params(2), X, Y)
    value, grads = jax.jit(array_module.loss_and_grad)(params, X_jax, Y_jax, X_T=held[0])
    assert_close(value, want_value, "loss")
    for name in numpy_module.PARAMS:
        assert_close(grads[name], want_grads[name], f"gradient of {name}")
    with pytest.raises(ValueError, match=r"^X_T: expected X's transpose, shape \(3, 40\), got \(40, 3\)$"):
        array_module.loss_and_grad(params, X_jax, Y_jax, X_T=X_jax)


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam"])
def test_full_batch_epochs_run_ahead_on_jax_follow_the_numpy_module(monkeypatch, optimizer):
    """150 epochs: two compiled runs of 64, then 22 epochs one at a time; each epoch's loss recorded."""
    jnp = namespace("jax")
    numpy_module, array_module = _trained_modules()
    X, Y = _classification()
    settings = {"optimizer": optimizer, "epochs": 150, "learning_rate": 0.05 if optimizer == "adam" else 0.3}
    want_params, want = numpy_module.train(numpy_module.init_params(1), X, Y, **settings)
    runs_ahead = _counting_runs_ahead(monkeypatch, array_module)
    X_jax, Y_jax = jnp.asarray(X), jnp.asarray(Y)
    params, history = array_module.train(array_module.init_params(1, like=X_jax), X_jax, Y_jax, **settings)
    assert runs_ahead == [64, 64]
    assert history["stopped"] == want["stopped"] == "epochs" and len(history["loss"]) == 150
    np.testing.assert_allclose(history["loss"], want["loss"], rtol=1e-10)
    for name in numpy_module.PARAMS:
        np.testing.assert_allclose(as_numpy(params[name]), want_params[name], rtol=1e-9, atol=1e-12)


def test_tolerance_stops_a_jax_run_at_the_numpy_modules_epoch(monkeypatch):
    """The loss changes by less than the tolerance within the second run of 64 epochs: those are taken
    again one at a time, and the run stops where the NumPy module's does, with its parameters."""
    jnp = namespace("jax")
    numpy_module, array_module = _trained_modules()
    X, Y = _classification()
    settings = {"epochs": 300, "learning_rate": 0.3, "tolerance": 0.0012}
    want_params, want = numpy_module.train(numpy_module.init_params(1), X, Y, **settings)
    assert want["stopped"] == "tolerance" and 64 < len(want["loss"]) < 128
    runs_ahead = _counting_runs_ahead(monkeypatch, array_module)
    X_jax, Y_jax = jnp.asarray(X), jnp.asarray(Y)
    params, history = array_module.train(array_module.init_params(1, like=X_jax), X_jax, Y_jax, **settings)
    assert runs_ahead == [64, 64]
    assert history["stopped"] == "tolerance" and len(history["loss"]) == len(want["loss"])
    np.testing.assert_allclose(history["loss"], want["loss"], rtol=1e-10)
    for name in numpy_module.PARAMS:
        np.testing.assert_allclose(as_numpy(params[name]), want_params[name], rtol=1e-9, atol=1e-12)


def test_validation_callback_and_early_stopping():
    _, array_module = _trained_modules()
    X, Y = _classification()
    X_val, Y_val = _classification(20, seed=1)
    seen = []
    params, history = array_module.train(array_module.init_params(1), X, Y, validation=(X_val, Y_val),
                                         callback=lambda epoch, logs, params: seen.append(logs) or epoch == 2)
    assert history["stopped"] == "callback" and len(history["loss"]) == len(history["val_loss"]) == 3
    assert [logs["val_loss"] for logs in seen] == history["val_loss"]
    assert history["loss"][-1] == pytest.approx(float(array_module.loss(params, X, Y)), rel=1e-12)
    _, history = array_module.train(array_module.init_params(1), X, Y, validation=(X, Y + 5.0), patience=1,
                                    epochs=50)
    assert history["stopped"] == "early_stopping" and history["best_epoch"] is not None


def test_mixed_libraries_and_integer_data_are_refused_naming_the_input():
    torch = pytest.importorskip("torch")
    _, array_module = _trained_modules()
    X, Y = _classification()
    with pytest.raises(TypeError, match="one array library"):
        array_module.loss(array_module.init_params(1), torch.asarray(X), Y)
    with pytest.raises(ValueError, match="X: expected a real floating dtype"):
        array_module.loss(array_module.init_params(1), X.astype(np.int64), Y)
    with pytest.raises(ValueError, match=r"Y: expected shape \(40, 3\)"):
        array_module.loss(array_module.init_params(1), X, Y[:, :2])


def test_generate_backend_array_api_writes_a_module_beside_the_numpy_one(tmp_path, monkeypatch, capsys):
    from symbp.cli.main import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "generated").mkdir()
    assert main(["generate", "actuarial"]) == 0
    assert main(["generate", "actuarial", "--backend", "array-api"]) == 0
    numpy_source = (tmp_path / "generated" / "actuarial.py").read_text()
    source = (tmp_path / "generated" / "actuarial_array_api.py").read_text()
    assert "import numpy" in numpy_source and "array_namespace" not in numpy_source
    assert "from array_api_compat import array_namespace" in source
    assert "symbp" not in "".join(line for line in source.splitlines() if line.startswith(("import", "from")))
    module = load_module_from_source(source, "actuarial_array_api")
    X, Y, _ = random_problem(load_spec("actuarial"), 5, seed=0)
    assert float(module.loss(module.init_params(), X, Y)) > 0


@pytest.mark.parametrize("argument, message", [
    ("cuda", "--backend: unknown backend 'cuda'; choose one of numpy, array-api, cupy"),
    ("array-api", "--backend array-api: its modules import no_such_library, which is not installed; "
                  "install it with pip install 'symbp[array-api]'"),
])
def test_a_bad_backend_is_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch, capsys, argument, message):
    import dataclasses

    from symbp.cli.main import main
    from symbp.render.code.backends import BACKENDS

    monkeypatch.setitem(BACKENDS, "array-api", dataclasses.replace(BACKENDS["array-api"], requires="no_such_library"))
    target = tmp_path / "net.py"
    assert main(["generate", "actuarial", "--backend", argument, "-o", str(target)]) == 2
    assert capsys.readouterr().err == f"symbp: error: {message}\n"
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def chunked_lab_data(tmp_path):
    """The lab's data as memory-mapped .npy files, read by Dask in 8 chunks of rows."""
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    Y = np.exp((1 / (1 + np.exp(-X @ np.array([[0.25, 0.75], [0.5, 0.5], [0.75, 0.25]])))) @ np.array([[2.0], [3.0]]))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y)
    chunked = [da.from_array(np.load(tmp_path / f"{name}.npy", mmap_mode="r"), chunks=(50, -1)) for name in "XY"]
    assert all(array.numblocks[0] == 8 for array in chunked)
    return X, Y, *chunked


@functools.cache
def _lab_modules():
    network = build_network("actuarial")
    return (load_module_from_source(generate_module(network), "np_lab"),
            load_module_from_source(generate_array_api_module(network), "xp_lab"))


def test_a_full_batch_gradient_over_dask_chunks_equals_the_numpy_modules(chunked_lab_data):
    import dask
    import dask.array as da

    X, Y, X_chunks, Y_chunks = chunked_lab_data
    numpy_module, array_module = _lab_modules()
    params = numpy_module.init_params()
    value, grads = dask.compute(*array_module.loss_and_grad({k: da.from_array(v) for k, v in params.items()},
                                                            X_chunks, Y_chunks))
    want_value, want_grads = numpy_module.loss_and_grad(params, X, Y)
    assert_close(value, want_value, "loss")
    for name in numpy_module.PARAMS:
        assert_close(grads[name], want_grads[name], f"gradient of {name}")


@pytest.mark.parametrize("batch_size", [None, 64], ids=["full-batch", "mini-batch"])
def test_training_on_dask_chunks_ends_where_the_numpy_module_does(chunked_lab_data, batch_size):
    import dask.array as da

    X, Y, X_chunks, Y_chunks = chunked_lab_data
    numpy_module, array_module = _lab_modules()
    settings = {"epochs": 5, "learning_rate": 0.0005, "batch_size": batch_size}
    want_params, want = numpy_module.train(numpy_module.init_params(), X, Y, **settings)
    start = {k: da.from_array(v) for k, v in array_module.init_params().items()}
    params, history = array_module.train(start, X_chunks, Y_chunks, **settings)
    assert len(history["loss"]) == len(want["loss"]) == 5
    np.testing.assert_allclose(history["loss"], want["loss"], rtol=1e-10)
    for name in numpy_module.PARAMS:
        assert isinstance(params[name], da.Array)
        np.testing.assert_allclose(params[name].compute(), want_params[name], rtol=1e-9)


def test_torch_compile_traces_loss_and_grad():
    torch = pytest.importorskip("torch")
    _, array_module = _lab_modules()
    X = torch.asarray(np.random.default_rng(0).normal(size=(50, 3)))
    Y = torch.exp(X[:, :1] * 0.1)
    params = array_module.init_params(like=X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # dynamo's notes on array-api-compat's caches
        # Not fullgraph: array-api-compat turns a Python scalar operand (minimum(Z, 0)) into a tensor
        # through torch.result_type, which dynamo does not put in a graph.
        compiled = torch.compile(array_module.loss_and_grad, backend="eager")
        value, grads = compiled(params, X, Y)
    want_value, want_grads = array_module.loss_and_grad(params, X, Y)
    assert float(value) == pytest.approx(float(want_value), rel=1e-12)
    for name in array_module.PARAMS:
        assert_close(grads[name], want_grads[name].numpy(), f"compiled gradient of {name}")


def test_the_same_spec_gives_the_same_bytes():
    assert generate_array_api_module(load_spec("actuarial")) == generate_array_api_module(load_spec("actuarial"))


def test_training_on_a_distributed_cluster_ends_where_the_numpy_module_does(chunked_lab_data):
    distributed = pytest.importorskip("distributed")
    import dask.array as da

    X, Y, X_chunks, Y_chunks = chunked_lab_data
    numpy_module, array_module = _lab_modules()
    settings = {"epochs": 4, "learning_rate": 0.0005}
    want_params, want = numpy_module.train(numpy_module.init_params(), X, Y, **settings)
    # Workers in this process (no forked interpreters), but Dask's distributed scheduler all the same.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) \
            as cluster, distributed.Client(cluster) as client:
        start = {k: da.from_array(v) for k, v in array_module.init_params().items()}
        params, history = array_module.train(start, X_chunks, Y_chunks, **settings)
        assert len(client.scheduler_info()["workers"]) == 2
        assert client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.task_groups)) > 0
        computed = {name: value.compute() for name, value in params.items()}
    assert len(history["loss"]) == len(want["loss"]) == 4
    np.testing.assert_allclose(history["loss"], want["loss"], rtol=1e-10)
    for name in numpy_module.PARAMS:
        np.testing.assert_allclose(computed[name], want_params[name], rtol=1e-9)


def test_params_saved_from_torch_load_into_jax(tmp_path):
    torch = pytest.importorskip("torch")
    jnp = namespace("jax")
    _, array_module = _lab_modules()
    params = array_module.init_params(like=torch.zeros(1, dtype=torch.float64))
    array_module.save_params(tmp_path / "params.npz", params)
    loaded = array_module.load_params(tmp_path / "params.npz", like=jnp.zeros(1, dtype=jnp.float64))
    for name in array_module.PARAMS:
        assert loaded[name].dtype == jnp.float64
        np.testing.assert_array_equal(np.asarray(loaded[name]), params[name].numpy())
    assert set(array_module.load_params(tmp_path / "params.npz")) == set(array_module.PARAMS)


def test_array_api_modules_pass_ruff(tmp_path):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed")
    given = {"name": "given", "title": "A long title " * 12, "inputs": 2,
             "layers": [{"units": 2, "activation": "sigmoid", "weights": [[1, 2], [3, 4]], "biases": [0, 0]},
                        {"units": 1, "activation": "exponential", "weights": [[1], [2]], "biases": [0]}],
             "loss": {"name": "squared_error", "reduction": "sum"}}
    specs = {"given": given, "mask": CATALOGUE["hidden-relu-bias"], "where": CATALOGUE["custom-hidden-max-leaky"]}
    for name, spec in specs.items():
        (tmp_path / f"{name}.py").write_text(generate_array_api_module(spec))
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([ruff, "check", "--no-cache", "--config", str(root / "pyproject.toml"), str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
