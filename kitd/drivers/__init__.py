"""Device drivers: one module per device family, each a pure protocol codec plus a transport,
all behind the protocols of kitd.drivers.base; `registry` maps a device URI to its driver,
built from values (DriverSettings), not from the configuration.

May import only the bottom modules (errors, grey_image) and the device libraries (pyusb,
pyserial, OpenCV); never capture, services, the API, the daemon or hil.
"""
