"""Live capture: a capture tool's pcap pipe labelled as it arrives (``portsniff live``)."""
