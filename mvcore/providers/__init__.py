"""Generation providers: ``offline`` (embedded, real media) and ``replicate``."""
