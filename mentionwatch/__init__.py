"""mentionwatch: a self-hosted brand-mention monitor and responder."""

__version__ = "0.1.0"
