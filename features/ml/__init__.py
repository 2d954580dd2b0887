"""Pure feature code (no Django): the feature definitions, their vectorised computation and the store's codec."""
