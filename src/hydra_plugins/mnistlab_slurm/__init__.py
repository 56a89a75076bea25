"""mnistlab's launcher plugin (Hydra loads launchers from the hydra_plugins package only)."""
