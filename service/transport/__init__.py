"""HTTP transports shared by the fetcher and the webhook channel (see each module)."""

from .asyncio_net import AsyncioBackend, AsyncioTransport
from .lanes import Lanes

__all__ = ["AsyncioBackend", "AsyncioTransport", "Lanes"]
