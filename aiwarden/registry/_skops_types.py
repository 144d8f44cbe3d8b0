"""Which skops type names may be trusted, and by whom (docs/security.md, Artifact trust).

skops rebuilds an object by calling the type a file names (``__module__`` + ``__class__``)
with arguments the file holds, so trusting ``os.system`` runs a shell command, and
``logging.config.dictConfig`` calls whatever a string inside its dict names. A deny-list of
such callables can never be complete, so the rule is deny-by-default:

* ``refused``: a type may be trusted only if it is a plain data type of the standard library
  (``STDLIB_DATA``: ``collections.OrderedDict``, ``datetime.*``, ``decimal.Decimal``...), or
  comes from an ML package (``ML_PACKAGES``: scikit-learn, numpy, scipy, XGBoost, LightGBM,
  pandas' data types) outside its file, network and test helpers (``ML_REFUSED``), or from
  a package the operator names in ``AIWARDEN_TRUSTED_MODULES`` (their own transformers;
  never a standard-library or builtin module). Whatever the package, a name any of whose
  dotted components is a file, I/O, process or code helper (``HELPER``: ``numpy.savez``,
  ``numpy.rec.fromfile``, ``scipy.sparse.load_npz``, ``pandas...to_csv``, ``eval``...)
  is refused: components are matched whole, not as string prefixes of the dotted name
  (``numpy.save`` as a prefix missed ``numpy.savez``). Everything else (every other stdlib or
  builtin callable) is refused on every server, with or without ``trust=true``.
* ``sklearn_own``: scikit-learn's own model classes (``sklearn.tree._tree.Tree``, a
  ``BaseEstimator``...) construct state and call nothing the file chooses, so an open server
  (no keys) accepts ``trust=true`` for them; any other type there needs
  ``--allow-code-artifacts``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from collections.abc import Iterable

__all__ = ["HELPER", "ML_PACKAGES", "STDLIB_DATA", "dangerous", "helper", "refused",
           "sklearn_own", "trusted_modules"]

#: standard-library types that only hold data: constructing one calls nothing else.
#: ``functools.partial`` only stores its callable (which the file must name too, and which
#: is checked like any other type): scikit-learn's histogram boosting holds one.
STDLIB_DATA = frozenset({
    *(f"builtins.{n}" for n in (
        "bool", "int", "float", "complex", "str", "bytes", "bytearray", "tuple", "list",
        "dict", "set", "frozenset", "slice", "range", "NoneType", "Ellipsis")),
    "collections.OrderedDict", "collections.defaultdict", "collections.Counter",
    "collections.deque",
    "datetime.date", "datetime.datetime", "datetime.time", "datetime.timedelta",
    "datetime.timezone", "decimal.Decimal", "fractions.Fraction", "uuid.UUID",
    "functools.partial", "zoneinfo.ZoneInfo",  # a time zone by key (its file under tzpath)
})
#: packages whose types may be trusted (with ``trust=true`` where skops does not already)
ML_PACKAGES = ("sklearn", "numpy", "scipy", "xgboost", "lightgbm", "pandas")
#: ...except their modules and names that read or write files, reach the network, load
#: libraries, evaluate strings or exist for tests (prefixes of dotted names)
ML_REFUSED = (
    "numpy.load", "numpy.save", "numpy.fromfile", "numpy.memmap", "numpy.loadtxt",
    "numpy.genfromtxt", "numpy.fromregex", "numpy.DataSource", "numpy.lib.format",
    "numpy.lib.npyio", "numpy.lib._npyio_impl", "numpy.lib._datasource", "numpy.lib.utils",
    "numpy.ctypeslib", "numpy.f2py", "numpy.distutils", "numpy.testing", "numpy._pytesttester",
    "numpy.core._multiarray_umath._load", "numpy.show_config", "numpy.info",
    "numpy._core._multiarray_umath._load",
    "scipy.io", "scipy.datasets", "scipy.misc", "scipy.LowLevelCallable",
    "scipy._lib._ccallback", "scipy._lib._testutils", "scipy.test",
    "sklearn.datasets", "sklearn.utils._testing", "sklearn.utils.discovery",
    "sklearn.utils._show_versions", "sklearn.show_versions", "sklearn.externals",
    "sklearn.tree._export", "sklearn.tree.export_graphviz", "sklearn.tree.plot_tree",
    "sklearn.utils._estimator_html_repr", "sklearn.set_config", "sklearn.config_context",
    "xgboost.tracker", "xgboost.dask", "xgboost.spark", "xgboost.collective",
    "xgboost.federated", "xgboost.testing", "xgboost.plotting", "xgboost.plot_tree",
    "xgboost.to_graphviz", "xgboost.core._load_lib", "xgboost.libpath",
    "lightgbm.dask", "lightgbm.plotting", "lightgbm.plot_tree", "lightgbm.create_tree_digraph",
    "lightgbm.libpath", "lightgbm.basic._load_lib",
)
#: a dotted-name component (lower-cased) naming a file, I/O, process or code helper:
#: words anywhere in it, verbs and module names at its start or whole
HELPER = re.compile(
    r"save|load|dump|fromfile|tofile|textfile|txt|memmap|fromregex|datasource|npyio|npz|pickle"
    r"|marshal|shelve|popen|subprocess|spawn|ctypes|cdll|dlopen|import|getattr|setattr"
    r"|delattr|eval|exec|compile|system|socket|url|tempfile|shutil|mmap|glob"
    r"|^_*(?:open|read|write|to_|fork|remove|unlink|rmdir|mkdir|chmod|chown|rename|kill"
    r"|environ|putenv)"
    r"|^_*(?:io|os|nt|posix|sys|pathlib|file|files|format|builtins?)$")
#: pandas is trusted for its data types only (frames, series, indexes, dtypes, timestamps)
_PANDAS_DATA = ("pandas.core.frame.", "pandas.core.series.", "pandas.core.indexes.",
                "pandas.core.arrays.", "pandas.core.dtypes.", "pandas.core.internals.",
                "pandas._libs.")
#: scikit-learn subpackages whose classes hold fitted model state
_SKLEARN_MODEL_PACKAGES = ("sklearn.tree.", "sklearn.ensemble.", "sklearn._loss.",
                           "sklearn.neighbors.", "sklearn.linear_model.", "sklearn.svm.")
_STDLIB = frozenset(sys.stdlib_module_names) | {"builtins", "__builtin__", "__main__"}


def trusted_modules() -> tuple[str, ...]:
    """The operator's own packages (``AIWARDEN_TRUSTED_MODULES``, comma separated), read at
    each check; standard-library and builtin modules are never honoured there."""
    names = (m.strip() for m in os.environ.get("AIWARDEN_TRUSTED_MODULES", "").split(","))
    return tuple(m for m in names if m and m.split(".", 1)[0] not in _STDLIB
                 and m.split(".", 1)[0] not in ML_PACKAGES)


def _under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(f"{p}.") for p in prefixes)


def helper(name: str) -> bool:
    """Whether a component of dotted ``name`` is a file, I/O, process or code helper."""
    return any(HELPER.search(part.lower()) for part in name.split("."))


def allowed(name: str, modules: tuple[str, ...] | None = None) -> bool:
    """Whether ``name`` (``module.Type``) may be trusted at all (deny by default)."""
    if name in STDLIB_DATA:
        return True
    if helper(name):
        return False
    top = name.split(".", 1)[0]
    if top in ML_PACKAGES:
        if _under(name, ML_REFUSED):
            return False
        if top == "pandas" and (not name.startswith(_PANDAS_DATA) or "computation" in name):
            return False
        return _ml_origin(name)
    if top in _STDLIB:
        return False
    return _under(name, trusted_modules() if modules is None else modules)


def _ml_origin(name: str) -> bool:
    """Whether the object an ML-package name resolves to is really that package's own (an
    ML module's ``from subprocess import run`` would otherwise pass as ``pkg.mod.run``)."""
    import types

    obj = _resolve(name)
    if obj is None or isinstance(obj, types.ModuleType):
        return False
    try:
        import numpy as np

        if isinstance(obj, np.ufunc):
            return True
    except ImportError:
        pass
    origin = getattr(obj, "__module__", None)
    if not isinstance(origin, str):
        return False
    where = f"{origin}.{getattr(obj, '__qualname__', getattr(obj, '__name__', ''))}"
    if helper(where):  # a harmless-looking alias of a helper
        return False
    if origin.split(".", 1)[0] in ML_PACKAGES:
        return not _under(where, ML_REFUSED) and not _under(origin, ML_REFUSED)
    return where in STDLIB_DATA  # e.g. a data type an ML package re-exports


def refused(types: Iterable[str], modules: tuple[str, ...] | None = None) -> list[str]:
    """The names among ``types`` that aiwarden never trusts (sorted)."""
    mods = trusted_modules() if modules is None else modules
    return sorted(t for t in set(types) if not allowed(t, mods))


dangerous = refused  # the name callers used before deny-by-default


def sklearn_own(name: str) -> bool:
    """Whether ``name`` is a class scikit-learn defines for model state: a ``BaseEstimator``
    subclass or a class of its tree, ensemble, loss, neighbors, linear or SVM packages.
    Only names under ``sklearn.`` are imported to find out."""
    if not name.startswith("sklearn."):
        return False
    cls = _resolve(name)
    if not inspect.isclass(cls) or not cls.__module__.startswith("sklearn."):
        return False
    from sklearn.base import BaseEstimator

    return issubclass(cls, BaseEstimator) or f"{cls.__module__}.".startswith(
        _SKLEARN_MODEL_PACKAGES)


def _resolve(name: str) -> object:
    """The object a dotted name means (module part imported), or None."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None
