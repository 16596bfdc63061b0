"""Built-in site parsers; importing this package registers them."""

from __future__ import annotations

from . import (  # noqa: F401  (imported for registration)
    cbinsights,
    cnbc,
    footnote_blog,
    forbeschina,
    selectors,
    tmtpost,
    tmtpost_en,
    wordpress,
)
