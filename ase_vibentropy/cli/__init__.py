"""The ``vibentropy`` command line: one module per sub-command, no physics inside."""
