"""Which skops type names may be trusted, and by whom (docs/security.md, Artifact trust).

skops rebuilds an object by calling the type a file names (``__module__`` + ``__class__``)
with arguments the file holds, so trusting ``os.system`` runs a shell command. Two rules:

* ``dangerous``: callables that reach the shell, files, the network or the importer are
  refused on every server, with or without ``trust=true``: no model needs them.
* ``sklearn_own``: scikit-learn's own model classes (``sklearn.tree._tree.Tree``, a
  ``BaseEstimator``...) construct state and call nothing the file chooses, so an open server
  (no keys) accepts ``trust=true`` for them; any other type there needs
  ``--allow-code-artifacts``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable

__all__ = ["dangerous", "sklearn_own"]

#: modules whose every attribute is refused (the first dotted part of a type name)
DANGEROUS_MODULES = frozenset({
    "os", "posix", "nt", "posixpath", "ntpath", "subprocess", "_posixsubprocess", "sys", "shutil",
    "pty", "socket", "_socket", "ssl", "importlib", "runpy", "code", "codeop", "ctypes",
    "_ctypes", "multiprocessing", "concurrent", "asyncio", "threading", "_thread", "signal",
    "pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve",
    "io", "_io", "pathlib", "tempfile", "glob", "fileinput", "webbrowser", "urllib", "http",
    "ftplib", "smtplib", "telnetlib", "requests", "httpx", "pydoc", "pdb", "bdb", "inspect",
    "zipimport", "pkgutil", "platform", "resource", "gc", "weakref", "types", "ast",
    "__builtin__", "_frozen_importlib", "_frozen_importlib_external", "imp", "operator",
    "_operator", "timeit", "trace", "cProfile", "profile", "setuptools", "pip",
})
#: single callables refused (``builtins.int`` and friends stay skops' business)
DANGEROUS_NAMES = frozenset({
    f"builtins.{n}" for n in (
        "eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr",
        "globals", "locals", "vars", "input", "breakpoint", "exit", "quit", "help",
        "memoryview", "classmethod", "staticmethod", "property", "type", "object", "super")
} | {"numpy.load", "numpy.save", "numpy.savez", "numpy.loadtxt", "numpy.savetxt",
     "numpy.fromfile", "numpy.memmap", "numpy.genfromtxt", "numpy.lib.npyio.load",
     "numpy.ctypeslib.load_library", "numpy.testing", "scipy.io.loadmat", "scipy.io.savemat"})
#: scikit-learn subpackages whose classes hold fitted model state
_SKLEARN_MODEL_PACKAGES = ("sklearn.tree.", "sklearn.ensemble.", "sklearn._loss.",
                           "sklearn.neighbors.", "sklearn.linear_model.", "sklearn.svm.")


def dangerous(types: Iterable[str]) -> list[str]:
    """The names among ``types`` that aiwarden never trusts (sorted)."""
    return sorted(t for t in set(types)
                  if t.split(".", 1)[0] in DANGEROUS_MODULES or t in DANGEROUS_NAMES
                  or any(t.startswith(f"{n}.") for n in DANGEROUS_NAMES))


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
