"""The skops allow rule itself (aiwarden.registry._skops_types.allowed): names are judged by
their dotted components, so no file, I/O, process or code helper passes as a prefix miss."""

from __future__ import annotations

import pytest

from aiwarden.registry._skops_types import allowed, helper

pytest.importorskip("sklearn")

ORDINARY = ["sklearn.tree._tree.Tree", "sklearn.neighbors._kd_tree.KDTree",
            "sklearn.metrics._dist_metrics.EuclideanDistance64",
            "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
            "sklearn.linear_model._logistic.LogisticRegression",
            "sklearn._loss._loss.CyHalfBinomialLoss", "sklearn.utils.validation.check_array",
            "numpy.log1p", "numpy.float64", "numpy.dtype", "numpy.random.mtrand.RandomState",
            "scipy.sparse._csr.csr_matrix", "pandas.core.frame.DataFrame",
            "functools.partial", "collections.OrderedDict", "datetime.datetime"]
HELPERS = ["numpy.save", "numpy.savez", "numpy.savez_compressed", "numpy.load",
           "numpy.rec.fromfile", "numpy.ma.mrecords.fromtextfile", "numpy.fromfile",
           "numpy.loadtxt", "numpy.savetxt", "numpy.genfromtxt", "numpy.memmap",
           "numpy.lib.npyio.NpzFile", "numpy.ndarray.tofile",
           "scipy.sparse.save_npz", "scipy.sparse.load_npz", "scipy.io.loadmat",
           "pandas.read_csv", "pandas.read_pickle", "pandas.core.frame.DataFrame.to_csv",
           "pandas.core.frame.DataFrame.to_pickle", "joblib.load", "joblib.dump",
           "os.system", "os.popen", "io.open", "pathlib.Path", "builtins.open",
           "builtins.eval", "builtins.exec", "builtins.compile", "builtins.getattr",
           "builtins.__import__", "subprocess.run", "importlib.import_module"]


@pytest.mark.parametrize("name", ORDINARY)
def test_ordinary_model_types_stay_allowed(name: str) -> None:
    assert allowed(name, ()), name


@pytest.mark.parametrize("name", HELPERS)
def test_file_io_process_and_code_helpers_are_refused(name: str) -> None:
    assert not allowed(name, ()), name
    # even when the operator names the module as their own
    assert not allowed(name, (name.split(".", 1)[0],)), name


def test_components_match_whole_not_as_string_prefixes() -> None:
    assert helper("numpy.savez") and helper("numpy.rec.fromfile")
    assert helper("mypkg.io.Reader") and not helper("mypkg.ionic.Model")
    assert not helper("sklearn._loss.loss.HalfBinomialLoss")  # "loss" is no "load"
    assert allowed("mypkg.models.Doubler", ("mypkg",))
    assert not allowed("mypkg.models.Doubler", ("mypk",))  # a prefix is no package
