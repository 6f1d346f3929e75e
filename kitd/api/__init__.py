"""The kit's local HTTP API (aiohttp): routes, the live iris preview stream, the event
stream and the OpenAPI document that describes them; and the network API for paired field
laptops (kitd.api.network, its own app and document, served over mutual TLS).

May import the kit (kitd.kit) and everything below it; nothing below imports this package.
`make_app(kit)` builds the application for one Kit.
"""

from kitd.api.routes import make_app

__all__ = ["make_app"]
