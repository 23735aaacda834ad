"""Motion stage: audio features → per-frame expression, head pose and blinks (MotionTrack)."""
