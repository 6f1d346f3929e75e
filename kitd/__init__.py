"""kitd: the daemon, drivers and tools of the mobile e-KTP recording kit.

The layers, top to bottom (each imports only those below it; pyproject.toml's
[tool.importlinter] contracts enforce this in `make test`):

    kitd.daemon                 the process: signals, systemd notify, the port file
    kitd.api | kitd.cli         HTTP for the screen and laptop | kitctl for technicians
    kitd.kit                    one kit's running state: slots, feeds, events, sessions
    kitd.services               what the kit does with its devices
    kitd.config                 the configuration and its keys
    kitd.capture                quality and capture, per modality (values in, no I/O policy)
    kitd.drivers                one module per device family: codec + transport
    kitd.grey_image | events | logs | sdnotify, then kitd.errors at the bottom

`hil` (simulators and the rig) and `bench` are clients outside kitd; kitd never imports them.
"""

__version__ = "0.1.0"
