"""Face stage: detection, the 478-point mesh, crop framing and the linear face model."""
