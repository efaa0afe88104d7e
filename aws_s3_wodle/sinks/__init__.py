"""Where events go: the analysisd datagram socket, or a JSON-lines file / stdout.

A sink takes a batch of events (JSON documents as bytes) and either accepts all of them or raises
SinkError, in which case nothing of the object is acknowledged. Events a sink can never carry (too big
for a datagram) go to an OversizeRecorder (``recorder.py``): their head, size and hash are kept.
"""
