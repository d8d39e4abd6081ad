"""Training: data pipeline, rate-distortion loss, resumable loop, weights export."""
