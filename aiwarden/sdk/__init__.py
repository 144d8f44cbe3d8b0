"""Python SDK: a REST client and a background logger for serving processes.

>>> from aiwarden.sdk import Client
>>> client = Client("http://127.0.0.1:8000")            # nothing is sent yet
>>> client.base_url
'http://127.0.0.1:8000/api/v1'
>>> client.close()

Typical use::

    client = Client("http://monitor:8000", api_key="...")
    client.upload_reference("fraud", "v1", train_df, target="label", prediction="pred")
    with client.logger("fraud") as wl:                   # inside the serving process
        wl.log("tx-1", {"amount": 12.5}, prediction=1, scores=0.93)
    client.metrics_frame("fraud", "drift", step="1h")

Errors: see :mod:`aiwarden.sdk.client` (``ApiError``, status 0 when unreachable).
"""

from aiwarden.sdk.client import ApiError, Client
from aiwarden.sdk.logger import BackgroundLogger, LoggerClosedError

__all__ = ["ApiError", "BackgroundLogger", "Client", "LoggerClosedError"]
