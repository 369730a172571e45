"""The main window's tabs: Train, Attack playground, Evaluate."""
