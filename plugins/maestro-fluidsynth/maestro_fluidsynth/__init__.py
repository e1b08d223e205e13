"""maestro plugin package maestro_fluidsynth: its backends are registered through the maestro_cli hooks."""
