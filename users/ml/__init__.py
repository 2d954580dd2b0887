"""Pure code of the users app (no Django): readers of public rating data sets."""
