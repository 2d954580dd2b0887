"""Dataset readers and generators: plain pandas/numpy, no Django. `users.services` writes what they produce."""
