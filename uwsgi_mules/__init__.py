"""uwsgi-mules: safe, typed and testable uWSGI mules and farms.

>>> from uwsgi_mules import Mule
>>> @Mule(1).offload()
... def resize(image_id: int) -> None: ...
"""

from .errors import (
    BackendUnavailable,
    MessageTooLarge,
    MulesError,
    NotInMule,
    NotOffloadable,
    QueueFull,
    TopologyError,
    UnknownFarm,
    UnknownMule,
)
from .runtime.mules import Farm, Mule
from .runtime.offload import TypeMuleFarm, mule_offload
from .runtime.state import Settings, configure, reset_runtime

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailable",
    "Farm",
    "MessageTooLarge",
    "Mule",
    "MulesError",
    "NotInMule",
    "NotOffloadable",
    "QueueFull",
    "Settings",
    "TopologyError",
    "TypeMuleFarm",
    "UnknownFarm",
    "UnknownMule",
    "configure",
    "mule_offload",
    "reset_runtime",
]
