"""pytest configuration: the rig's fixtures for every test folder."""

pytest_plugins = ["hil.pytest_plugin"]
