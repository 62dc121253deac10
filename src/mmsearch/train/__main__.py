"""``python -m mmsearch.train`` and ``torchrun ... -m mmsearch.train``: the training app.

Takes the arguments of ``mmsearch train`` (see ``params``); under torchrun every process
runs this, and only the main one prints the report.
"""

from __future__ import annotations

from mmsearch.train.main import main

if __name__ == "__main__":
    raise SystemExit(main())
