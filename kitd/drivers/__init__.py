"""Device drivers: one module per device family, each a pure protocol codec plus a transport."""
