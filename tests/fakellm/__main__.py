"""``python -m fakellm``: the fake server in a process of its own (see :mod:`fakellm.process`)."""

from __future__ import annotations

from .process import main

if __name__ == "__main__":
    main()
