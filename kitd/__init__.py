"""kitd: the daemon, drivers and tools of the mobile e-KTP recording kit."""

__version__ = "0.1.0"
