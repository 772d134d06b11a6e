"""Config generation: a uWSGI section with mules and farms, rendered to INI.

>>> from uwsgi_mules.config import Section
>>> section = Section()
>>> section.workers.set_mules_params(mules=2, farms=[section.workers.mule_farm("busy", 2)])  # doctest: +ELLIPSIS
<...Section object at ...>
>>> print(section.as_ini())  # doctest: +ELLIPSIS
[uwsgi]
master = true
mules = 2
farm = busy:1,2
env = UWSGIMULES_TOPOLOGY=...
"""

from .ini import read_ini, read_ini_text
from .section import MuleLayout, Section
from .workers import MuleFarm

__all__ = ["MuleFarm", "MuleLayout", "Section", "read_ini", "read_ini_text"]
