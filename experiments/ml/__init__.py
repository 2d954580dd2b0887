"""Pure numpy parts of the experiments: the closed-loop simulation's visits and daily figures."""
