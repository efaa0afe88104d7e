"""aws-s3-wodle: pull AWS security data into a Wazuh analysis engine."""

__version__ = "0.1.0"
