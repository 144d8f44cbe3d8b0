"""Image models: properties, quality findings, the training-set audit and embedding drift.

Pure engine code (numpy, scipy, scikit-learn; Pillow and cleanlab from the ``images`` extra,
imported on first use): it never imports the server or the store. A server calls

    properties(list_of_bytes)            -> PropertyTable   (columns, NaN where undecodable)
    quality(list_of_bytes | table, ...)  -> QualityReport   (findings with reason codes)
    audit_images(DIR | MANIFEST, ...)    -> AuditReport     (adds label issues, outliers)
    mmd_test(reference, current)         -> MMDResult       (embedding drift)
    domain_classifier_auc(ref, cur)      -> DomainClassifierResult

Undecodable input never raises: it becomes a finding (``REASONS`` lists the codes). Bad
parameters raise ``ParameterError``; a missing extra raises ``MissingExtraError``. See
docs/images.md.
"""

from aiwarden.images._audit import AuditReport, ImageRef, audit_images, load_source
from aiwarden.images._decode import (
    FORMATS,
    Decoded,
    DecodeFailure,
    decode,
    decode_base64,
    decode_many,
)
from aiwarden.images._deps import INSTALL_HINT, MissingExtraError
from aiwarden.images._drift import (
    DomainClassifierResult,
    MMDResult,
    domain_classifier_auc,
    mmd_test,
)
from aiwarden.images._properties import (
    NUMERIC,
    PropertyTable,
    compute_properties,
    hamming,
    properties,
)
from aiwarden.images._quality import (
    FAILURES,
    REASONS,
    Finding,
    QualityReport,
    duplicates,
    leakage,
    quality,
)

__all__ = [
    "FAILURES",
    "FORMATS",
    "INSTALL_HINT",
    "NUMERIC",
    "REASONS",
    "AuditReport",
    "DecodeFailure",
    "Decoded",
    "DomainClassifierResult",
    "Finding",
    "ImageRef",
    "MMDResult",
    "MissingExtraError",
    "PropertyTable",
    "QualityReport",
    "audit_images",
    "compute_properties",
    "decode",
    "decode_base64",
    "decode_many",
    "domain_classifier_auc",
    "duplicates",
    "hamming",
    "leakage",
    "load_source",
    "mmd_test",
    "properties",
    "quality",
]
