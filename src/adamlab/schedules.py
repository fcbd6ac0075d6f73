"""Learning-rate schedules (under construction)."""
