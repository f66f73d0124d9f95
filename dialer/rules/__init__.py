"""The pure core: rules over values, the clock passed in; no I/O."""
