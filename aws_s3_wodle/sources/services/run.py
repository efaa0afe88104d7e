"""One run of a `<service>` block: its session, its account, each of its regions in turn, one summary line."""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Optional

from botocore.exceptions import BotoCoreError, ClientError

from aws_s3_wodle.config.services import CloudWatchLogsService, InspectorService, ServiceBlock
from aws_s3_wodle.errors import AwsAccessError, Interrupted, one_line
from aws_s3_wodle.platform.aws import AwsClients, describe_client_error, make_session
from aws_s3_wodle.seams import Sink
from aws_s3_wodle.sources.services.cloudwatch import CloudWatchLogsRun
from aws_s3_wodle.sources.services.common import EndRun, ServiceOptions, ServiceRun
from aws_s3_wodle.sources.services.inspector import InspectorRun
from aws_s3_wodle.sources.services.state import ServiceState, default_state_path
from aws_s3_wodle.sources.services.stats import ServiceStats

log = logging.getLogger("aws-s3-wodle")


def regions_of(block: ServiceBlock, clients: AwsClients) -> tuple[str, ...]:
    """The configured regions, else the session's own."""
    return tuple(block.regions) if block.regions else (clients.region,)


def account_of(block: ServiceBlock, clients: AwsClients) -> str:
    try:
        return clients.account(block.sts_endpoint)
    except (ClientError, BotoCoreError) as exc:
        raise AwsAccessError(f"sts:GetCallerIdentity failed: {describe_client_error(exc)}; check the credentials "
                             "and the STS endpoint") from None


def run_service(block: ServiceBlock, sink: Sink, options: ServiceOptions, stop: threading.Event,
                state_dir: str, stats: Optional[ServiceStats] = None) -> ServiceStats:
    """Read every region of `block` once; returns the run's counters (logged as its summary line)."""
    stats = stats or ServiceStats(block.label, service=block.TYPE)
    clients = make_session(block, block.regions[0] if block.regions else None, stop)
    account = account_of(block, clients)
    state = ServiceState(default_state_path(Path(state_dir)))
    run = ServiceRun(sink, state, options, stop)
    if options.reparse:
        log.info("%s: reparse: reading again from %s, whatever was delivered before", block.label,
                 block.only_logs_after or "the start of today (UTC)")
    try:
        for region in regions_of(block, clients):
            if stop.is_set():
                raise Interrupted("stopped before the next region; it is read on the next run")
            here = clients.in_region(region)
            stats.regions += 1
            source: Any = (CloudWatchLogsRun(block, here.logs(), account, region, run, stats)
                           if isinstance(block, CloudWatchLogsService) else
                           InspectorRun(block, here.inspector2(), account, region, run, stats))
            source.read()
        for group, regions in stats.missing_groups.items():
            if regions == stats.regions:
                stats.error("missing")
                log.error("%s: log group '%s' exists in none of the regions read (%s); check <aws_log_groups> "
                          "and <regions>", block.label, one_line(group), ", ".join(regions_of(block, clients)))
    except EndRun:
        log.error("%s: ending the run at the first failure (skip_on_error is 'no')", block.label)
    except Interrupted as exc:
        log.info("%s: %s", block.label, exc)
    finally:
        state.close()
        stats.finish()
        log.info("%s", stats.summary())
    return stats


__all__ = ["run_service", "ServiceOptions", "CloudWatchLogsService", "InspectorService"]
