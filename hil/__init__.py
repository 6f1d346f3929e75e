"""Hardware-in-the-loop rig: device simulators and the harness that runs the real kitd against them."""
