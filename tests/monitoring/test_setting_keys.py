"""Settings documents refuse unknown keys even when their value is null (the long fuzz run
of 2026-12-06: ``{"0": null, "": null}`` on ``PUT .../concept-drift`` was answered 200,
the keys dropped silently where the document says no other key)."""

from __future__ import annotations

import pytest

from aiwarden.errors import ParameterError
from aiwarden.monitoring.concept_settings import ConceptDriftSettings


@pytest.mark.parametrize("doc,field", [({"0": None, "detectors": []}, "0"),
                                       ({"": None}, ""), ({"enabled": True, "x": 1}, "x")])
def test_an_unknown_key_is_refused_naming_it(doc: dict, field: str) -> None:
    with pytest.raises(ParameterError, match="unknown setting") as err:
        ConceptDriftSettings.parse(doc)
    assert err.value.field == field


def test_null_known_keys_still_mean_the_default() -> None:
    got = ConceptDriftSettings.parse({"enabled": None, "label_delay": None, "detectors": None})
    assert got == ConceptDriftSettings.parse({})
