"""maestro plugin package maestro_synctoolbox: its backends are registered through the maestro_cli hooks."""
