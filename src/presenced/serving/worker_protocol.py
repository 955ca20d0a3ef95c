"""The connection limits in each worker process of ``presenced serve --workers N``.

uvicorn hands a worker its configuration in another process, where a protocol class made at
run time cannot follow; so it is named by import string (``WORKER_PROTOCOL``) and each worker
imports this module, which reads the limits from the settings of the environment the worker
inherited (the parent process validated them). Only worker processes import it.
"""

from __future__ import annotations

from presenced.serving.protocol import ConnectionLimits, limited_protocol
from presenced.settings import load_settings

WORKER_PROTOCOL = "presenced.serving.worker_protocol:WorkerHttpProtocol"

WorkerHttpProtocol = limited_protocol(ConnectionLimits.from_settings(load_settings()))
