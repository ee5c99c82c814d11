"""Training the student through TRL (``trainer``): SFT and DFT, full weights or LoRA."""
