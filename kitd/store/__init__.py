"""The kit's one database: officers, work orders, and (later issues) visits and bundles."""
