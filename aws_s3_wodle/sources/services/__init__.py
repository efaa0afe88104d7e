"""AWS services read through their own APIs: CloudWatch Logs (`cloudwatch.py`) and Inspector v2
(`inspector.py`); what was delivered is kept per stream in `state.py`; `run.py` runs one block once."""
