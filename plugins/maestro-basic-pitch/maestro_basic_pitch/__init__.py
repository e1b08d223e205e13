"""maestro plugin package maestro_basic_pitch: its backends are registered through the maestro_cli hooks."""
