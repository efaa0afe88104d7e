"""AWS sessions: the standard credential chain, a profile, and an assumed role that refreshes itself.

Endpoints come from the standard places (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SQS/_S3/_STS, config files),
which botocore honours on its own; we only override them where the config says so: `sts_endpoint` for STS,
`service_endpoint` for S3.

Clients are botocore's own (boto3's `Session.client` makes the same ones): importing boto3 also imports
s3transfer and multiprocessing for S3 transfer helpers we never call, ~0.08 s on every pass a manager starts.
"""
from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from typing import Any, Optional

import botocore.session
from botocore.config import Config as BotoConfig
from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound
from botocore.retries import standard as standard_retries

from aws_s3_wodle import __version__
from aws_s3_wodle.config.access import AwsAccess
from aws_s3_wodle.errors import AwsAccessError
from aws_s3_wodle.platform.aws_errors import describe_client_error

DEFAULT_REGION = "us-east-1"
# Refresh assumed-role credentials this long before they expire, so no call runs on a dead token.
REFRESH_WINDOW = 300


# Tries per AWS call (the first and 5 retries, with botocore's exponential backoff up to 20 s between them)
# unless the operator set AWS_MAX_ATTEMPTS or max_attempts in the AWS config file, which botocore honours.
TOTAL_ATTEMPTS = 6


def client_config(max_pool: int = 64) -> BotoConfig:
    """Our botocore settings. The pool allows one connection per object in flight (--parallel-objects, at
    most 64): connections are opened only when needed and reused across objects."""
    retries: dict[str, Any] = {"mode": "standard"}
    if botocore.session.Session().get_config_variable("max_attempts") is None:
        retries["total_max_attempts"] = TOTAL_ATTEMPTS
    return BotoConfig(retries=retries, connect_timeout=10, read_timeout=60, max_pool_connections=max_pool,
                      user_agent_appid=f"aws-s3-wodle/{__version__}")  # our calls, told apart in CloudTrail


def stop_ends_retry_waits(client: Any, stop: Optional[threading.Event]) -> Any:
    """`client`, its waits between two tries of a call ended by `stop`.

    botocore waits between the tries of a throttled or failed call (standard mode: up to 20 s, 6 tries) in the
    calling thread, where neither a stop request nor a signal reaches it: SIGTERM while SQS throttled took 12 s
    to end the process. The same policy (botocore's own handler: what is retried, the backoff, the retry quota)
    now waits on `stop`; once it is set, no other try is made and the call ends with its last error, which the
    caller handles as any other (the object or message stays for the next run).
    """
    if stop is None or client.meta.config.retries.get("mode") != "standard":
        return client
    service = client.meta.service_model.service_id.hyphenize()
    event, unique_id = f"needs-retry.{service}", f"retry-config-{service}"  # botocore/retries/standard.py
    client.meta.events.unregister(event, unique_id=unique_id)  # the handler create_client registered
    # The same policy again (this also registers a second after-call quota release: the first handler's quota is
    # left unused, its release harmless), its own wait made the stop's: after the retry quota ran out, botocore
    # still waits once before answering a long poll (its RetryHandler's `sleep`, a constructor argument).
    policy = standard_retries.register_retry_handler(client, client.meta.config.retries.get("total_max_attempts"))
    client.meta.events.unregister(event, unique_id=unique_id)  # registered again by that call: wrapped below
    if hasattr(policy, "_sleep"):
        policy._sleep = stop.wait

    def needs_retry(**kwargs: Any) -> Any:
        delay = policy.needs_retry(**kwargs)
        if delay is None or delay is False:
            return delay  # no other try (False: botocore waited already and says so)
        if stop.wait(delay):
            return None  # stopped: no other try
        return 0  # waited already: try again now

    client.meta.events.register(event, needs_retry, unique_id=unique_id)
    return client


@dataclass
class AwsClients:
    """The clients one block needs, built once per run from one (possibly assumed-role) session.

    With the run's `stop`, a call waiting to try again (throttled, a 5xx, a broken connection) ends at a stop."""

    session: botocore.session.Session
    region: str
    s3_endpoint: Optional[str] = None
    stop: Optional[threading.Event] = None

    def client(self, service: str, endpoint_url: Optional[str] = None) -> Any:
        kwargs = {"region_name": self.region, "config": client_config()}
        if endpoint_url:
            kwargs["endpoint_url"] = endpoint_url
        return stop_ends_retry_waits(self.session.create_client(service, **kwargs), self.stop)

    def sqs(self) -> Any:
        return self.client("sqs")

    def s3(self) -> Any:
        return self.client("s3", self.s3_endpoint)

    # A <service> block's <service_endpoint> is the endpoint of that service (Wazuh's meaning), not of S3.
    def logs(self) -> Any:
        return self.client("logs", self.s3_endpoint)

    def inspector2(self) -> Any:
        return self.client("inspector2", self.s3_endpoint)

    def account(self, sts_endpoint: Optional[str] = None) -> str:
        """The account of the credentials (sts:GetCallerIdentity, allowed to every identity), through the block's
        <sts_endpoint> when it has one (a VPC without a route to the global STS endpoint)."""
        return str(self.client("sts", sts_endpoint).get_caller_identity()["Account"])

    def in_region(self, region: str) -> "AwsClients":
        """The same session's clients for another region (a service block reads several)."""
        return AwsClients(self.session, region, self.s3_endpoint, self.stop)


    @classmethod
    def of(cls, base: botocore.session.Session, region: str, access: AwsAccess,
           credentials: Optional[dict] = None) -> "AwsClients":
        """Clients from a base session, or from temporary credentials (an AssumeRole answer's `Credentials`)."""
        session = base
        if credentials is not None:
            session = base_session(access)
            session.set_credentials(credentials["AccessKeyId"], credentials["SecretAccessKey"],
                                    credentials["SessionToken"])
        return cls(session, region, access.service_endpoint)


def base_session(access: AwsAccess) -> botocore.session.Session:
    """The standard credential chain, or the block's profile (ProfileNotFound when it does not exist)."""
    return botocore.session.Session(profile=access.aws_profile) if access.aws_profile else botocore.session.Session()


def region_of(base: botocore.session.Session, region: Optional[str] = None) -> str:
    return region or base.get_config_variable("region") or DEFAULT_REGION


def sts_client(base: botocore.session.Session, access: AwsAccess, region: str, **kwargs: Any) -> Any:
    """STS at the block's <sts_endpoint> when it has one (the S3 endpoint never applies to STS)."""
    kwargs.setdefault("region_name", region)
    if access.sts_endpoint:
        kwargs["endpoint_url"] = access.sts_endpoint
    return base.create_client("sts", **kwargs)


def assume_role_args(access: AwsAccess, name: str = "aws-s3-wodle") -> dict[str, Any]:
    """AssumeRole's arguments besides RoleArn: a session name naming this host and process, the external
    id and the duration when configured."""
    extra: dict[str, Any] = {"RoleSessionName": f"{name}-{socket.gethostname()[:30]}-{os.getpid()}"}
    if access.external_id:
        extra["ExternalId"] = access.external_id
    if access.iam_role_duration:
        extra["DurationSeconds"] = access.iam_role_duration
    return extra


def make_session(access: AwsAccess, region: Optional[str] = None,
                 stop: Optional[threading.Event] = None) -> AwsClients:
    """A session from the standard chain or the profile, wrapped in an auto-refreshing AssumeRole if asked;
    its clients' retry waits end at `stop` (the process's stop request)."""
    try:
        base = base_session(access)
        region = region_of(base, region)
        if access.iam_role_arn:
            _assume_role(base, access, region, stop)
        elif base.get_credentials() is None:
            raise NoCredentialsError()
    except ProfileNotFound:
        raise AwsAccessError(f"AWS profile '{access.aws_profile}' not found in the shared credentials or config "
                             "files; check <aws_profile>") from None
    except (BotoCoreError, ClientError) as exc:
        raise AwsAccessError(f"cannot get AWS credentials: {describe_client_error(exc)}") from None
    return AwsClients(base, region, access.service_endpoint, stop)


def _assume_role(base: botocore.session.Session, access: AwsAccess, region: str,
                 stop: Optional[threading.Event] = None) -> None:
    source = base.get_credentials()
    if source is None:
        raise NoCredentialsError()
    extra = assume_role_args(access)

    def make_sts(service: str, **kwargs: Any) -> Any:  # our settings (retries, timeouts, user agent), not the defaults
        return stop_ends_retry_waits(sts_client(base, access, region, config=client_config(), **kwargs), stop)

    fetcher = AssumeRoleCredentialFetcher(make_sts, source, access.iam_role_arn, extra_args=extra,
                                          expiry_window_seconds=REFRESH_WINDOW)
    try:
        fetcher.fetch_credentials()  # fail now, with a clear message, rather than on the first S3 call
    except ClientError as exc:
        raise AwsAccessError(f"sts:AssumeRole on {access.iam_role_arn} refused: {describe_client_error(exc)}; "
                             "check the role's trust policy, the external id and the caller's sts:AssumeRole "
                             "permission") from None
    creds = DeferredRefreshableCredentials(refresh_using=fetcher.fetch_credentials, method="assume-role")
    base._credentials = creds  # botocore's documented-by-use hook for custom refreshable credentials


class LazyClient:
    """A client made on first use: a pass over an empty queue never loads S3's service model."""

    def __init__(self, make: Any) -> None:
        self._make, self._client, self._lock = make, None, threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make()
        return getattr(self._client, name)
