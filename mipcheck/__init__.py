"""mipcheck: test Mobile IPv4 equipment against RFC 5265 and the base Mobile IPv4 RFCs."""

__version__ = "0.1.0"
