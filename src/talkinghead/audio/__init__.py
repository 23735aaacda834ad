"""Speech in: synthesis, features and phones."""
