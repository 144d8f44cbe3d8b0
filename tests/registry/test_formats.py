"""Every format predicts what the in-process scikit-learn model predicts; code-running
formats and untrusted skops types need an admin's explicit trust."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from aiwarden.registry import FORMATS, ArtifactFormatError, Registry, UntrustedArtifactError
from tests.registry.models import (
    coef_json,
    custom_pipeline,
    fitted,
    frame,
    onnx_bytes,
    skops_bytes,
)

ENTRY = "tests.registry.models:load_numpy_logistic"


@pytest.fixture(scope="module")
def sk() -> object:
    return fitted(seed=1)


def test_skops_predicts_like_sklearn(registry: Registry, sk: object) -> None:
    registry.register("fmt-skops", skops_bytes(sk), format="skops")
    pred = registry.load("fmt-skops")
    x, _ = frame(200, seed=9)
    assert pred.format == "skops" and pred.classes == [0, 1]
    np.testing.assert_array_equal(pred.predict(x), sk.predict(x))
    np.testing.assert_array_equal(pred.predict_proba(x), sk.predict_proba(x))
    # columns are taken by name, whatever their order; rows may be dicts
    np.testing.assert_array_equal(pred.predict(x[["x3", "x1", "x2"]]), sk.predict(x))
    rows = x.head(3).to_dict("records")
    np.testing.assert_array_equal(pred.predict(rows), sk.predict(x.head(3)))


def test_onnx_predicts_like_sklearn(registry: Registry, sk: object) -> None:
    pytest.importorskip("skl2onnx")
    registry.register("fmt-onnx", onnx_bytes(sk), filename="model.onnx",
                      metadata={"inputs": ["x1", "x2", "x3"]})
    pred = registry.load("fmt-onnx")
    x, _ = frame(200, seed=9)
    assert pred.format == "onnx"
    np.testing.assert_array_equal(pred.predict(x[["x2", "x3", "x1"]]), sk.predict(x))
    np.testing.assert_allclose(pred.predict_proba(x), sk.predict_proba(x), atol=1e-5)
    assert pred.classes == [0, 1]


def test_entry_point_predicts_like_sklearn(registry: Registry, sk: object) -> None:
    registry.register("fmt-python", coef_json(sk), format="python", entry_point=ENTRY,
                      trust=True, actor="root")
    pred = registry.load("fmt-python")
    x, _ = frame(200, seed=9)
    np.testing.assert_array_equal(pred.predict(x), sk.predict(x))
    np.testing.assert_allclose(pred.predict_proba(x), sk.predict_proba(x), rtol=1e-9)
    assert registry.get("fmt-python").trusted_by == "root"


def test_pickle_needs_admin_and_trust(registry: Registry, sk: object) -> None:
    data = pickle.dumps(sk)
    with pytest.raises(UntrustedArtifactError, match="Only a key with the admin scope") as err:
        registry.register("fmt-pickle", data, format="pickle", admin=False, trust=True)
    assert err.value.field == "format"
    with pytest.raises(UntrustedArtifactError, match="must send trust=true") as err:
        registry.register("fmt-pickle", data, filename="m.pkl", admin=True)
    assert err.value.field == "trust"
    with pytest.raises(UntrustedArtifactError, match="admin scope"):
        registry.register("fmt-entry", b"", entry_point=ENTRY, admin=False, trust=True)
    assert not [v for v in registry_versions(registry, "fmt-pickle")]
    v = registry.register("fmt-pickle", data, format="pickle", admin=True, trust=True,
                          actor="ops-admin")
    assert v.trusted_by == "ops-admin"
    x, _ = frame(50, seed=2)
    np.testing.assert_array_equal(registry.load("fmt-pickle").predict(x), sk.predict(x))


def registry_versions(registry: Registry, name: str) -> list[object]:
    from aiwarden.store.models_repo import NotFound

    try:
        return list(registry.versions(name))
    except NotFound:
        return []


def test_untrusted_skops_types_are_refused(registry: Registry,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    model = custom_pipeline()
    data = skops_bytes(model)
    # deny by default: a user's own type is trusted only from a module the operator names
    monkeypatch.delenv("AIWARDEN_TRUSTED_MODULES", raising=False)
    with pytest.raises(ArtifactFormatError, match="AIWARDEN_TRUSTED_MODULES") as refused:
        registry.register("fmt-custom", data, format="skops", trust=True, actor="root")
    assert refused.value.field == "trusted_types"
    monkeypatch.setenv("AIWARDEN_TRUSTED_MODULES", "tests.registry.models")
    with pytest.raises(UntrustedArtifactError, match=r"tests\.registry\.models\.Doubler") as err:
        registry.register("fmt-custom", data, format="skops")
    assert err.value.field == "trust"
    with pytest.raises(UntrustedArtifactError, match="admin scope"):
        registry.register("fmt-custom", data, format="skops", admin=False, trust=True)
    # at load, the recorded list is all that is trusted: an empty one refuses the file
    with pytest.raises(UntrustedArtifactError, match="Doubler"):
        FORMATS["skops"].load(data, trusted_types=[])
    v = registry.register("fmt-custom", data, format="skops", trust=True, actor="root")
    assert v.trusted_types == ["tests.registry.models.Doubler"]
    assert v.trusted_by == "root"
    x, _ = frame(20, seed=5)
    np.testing.assert_array_equal(registry.load("fmt-custom").predict(x.to_numpy()),
                                  model.predict(x.to_numpy()))


def test_code_running_formats_never_load_without_recorded_trust(sk: object) -> None:
    with pytest.raises(UntrustedArtifactError, match="no admin trusted"):
        FORMATS["pickle"].load(pickle.dumps(sk), trusted=False)
    with pytest.raises(UntrustedArtifactError, match="no admin trusted"):
        FORMATS["python"].load(coef_json(sk), entry_point=ENTRY, trusted=False)


@pytest.mark.parametrize("lib,cls", [("lightgbm", "LGBMClassifier"),
                                     ("xgboost", "XGBClassifier")])
def test_boosting_wrappers_load_without_extra_trust(registry: Registry, lib: str,
                                                    cls: str) -> None:
    module = pytest.importorskip(lib)
    x, y = frame(300)
    kw = {"verbose": -1} if lib == "lightgbm" else {}
    model = getattr(module, cls)(n_estimators=5, **kw).fit(x, y)
    v = registry.register(f"fmt-{lib}", skops_bytes(model), format="skops", admin=False)
    assert f"{lib}.sklearn.{cls}" in v.trusted_types and v.trusted_by is None
    np.testing.assert_allclose(registry.load(f"fmt-{lib}").predict_proba(x),
                               model.predict_proba(x))


def test_onnx_with_external_data_is_refused(registry: Registry) -> None:
    """From bytes, an external tensor's path could name any file on the server."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    from onnx.external_data_helper import set_external_data

    weights = helper.make_tensor("w", TensorProto.FLOAT, [3],
                                 np.array([1, 2, 3], np.float32).tobytes(), raw=True)
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])], [weights])
    model = helper.make_model(graph)
    inline = model.SerializeToString()
    registry.register("fmt-inline", inline, format="onnx")  # the same graph, self-contained
    tensor = model.graph.initializer[0]
    set_external_data(tensor, location="../../../etc/passwd")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.ClearField("raw_data")
    with pytest.raises(ArtifactFormatError, match="'w' refers to external data"):
        registry.register("fmt-external", model.SerializeToString(), format="onnx")


def test_a_prompt_template_is_versioned_text_that_does_not_predict(registry: Registry) -> None:
    from aiwarden.errors import DataError

    text = "You are the support assistant of Acme. Answer in the customer's language. ✓"
    v = registry.register("fmt-prompt", text.encode(), filename="support.prompt")
    assert v.format == "prompt" and registry.artifact("fmt-prompt")[1] == text.encode()
    pred = registry.load("fmt-prompt")
    assert pred.format == "prompt" and pred.text == text
    with pytest.raises(DataError, match="prompt template: it does not answer /predict"):
        pred.predict([{"x": 1}])
    for bad, why in [(b"  \n", "empty"), (b"caf\xe9", "UTF-8 text: byte 3"),
                     (b"x" * 1_000_001, "at most 1,000,000 bytes")]:
        with pytest.raises(ArtifactFormatError, match=why):
            registry.register("fmt-prompt", bad, format="prompt")
    assert [x.version for x in registry.versions("fmt-prompt")] == ["1"]
