"""Every example in one app: what ``make run`` serves (``undying dev examples/app.py``).

One endpoint can serve any number of services, virtual objects and workflows; each example
file also defines its own ``app`` and runs on its own (``undying dev examples/saga.py``).
``undying dev`` makes this file's directory importable, as ``python examples/app.py`` would.
"""

from __future__ import annotations

from approval import approval
from counter import counter
from greeter import greeter
from saga import trips

import undying

app = undying.app([greeter, counter, approval, trips])
