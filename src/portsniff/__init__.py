"""portsniff: label network traffic with the IANA port registry."""

__version__ = "0.1.0"
