"""What the sync and the async runners do differently, behind the same names in ``sync`` and ``asyncio``."""
