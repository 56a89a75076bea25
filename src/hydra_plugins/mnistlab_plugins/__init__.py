"""mnistlab's Hydra plugins (Hydra loads launchers and sweepers from hydra_plugins only)."""
