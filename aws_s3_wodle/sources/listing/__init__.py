"""Buckets read by listing: AWS log prefixes (CloudTrail, VPC flow, Config, ...) with SQLite state.

types.py   what each bucket type is (key layout, record parser, event source), as data
parsers.py the record parsers of the line formats (VPC flow, load balancers, S3 access, Umbrella)
shape.py   the event shapes Wazuh's AWS rules and index expect (field fixes, the aws wrapper)
listing.py the listing, written once: accounts, regions, days
run.py     one pass over one bucket block: list -> fetch -> decode -> send -> record -> remove
"""
