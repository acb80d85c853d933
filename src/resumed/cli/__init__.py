"""resumectl: inspect sessions offline, or query the resumed daemon over D-Bus."""
