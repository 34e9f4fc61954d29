"""Training engines: the generic loop (`trainer`), its tasks (`selfsup`, ...), checkpoints, distributed setup."""
