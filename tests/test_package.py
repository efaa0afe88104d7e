"""The Debian package: built with packaging/build-deb.sh, installed with dpkg into a scratch root, run from
the installed files (--help, `test`, a pass, the Wazuh switch with the manager's command line), removed cleanly.

dpkg installs into the scratch root with --instdir/--admindir and runs the maintainer scripts without chroot
(--force-script-chrootless, DPKG_ROOT set), so the machine's own /opt, /usr and dpkg database are untouched.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aws_s3_wodle.lab.engine import DatagramEngine
from aws_s3_wodle.lab.faults import require_external_id
from aws_s3_wodle.lab.security_lake import lab_env

SRC = Path(__file__).resolve().parents[1]
HEADER = b"1:Wazuh-AWS:"

pytestmark = [
    pytest.mark.skipif(not shutil.which("dpkg-deb") or not shutil.which("dpkg"),
                       reason="dpkg-deb/dpkg not found: the Debian package is built and tested on Debian or Ubuntu"),
    pytest.mark.skipif(os.geteuid() != 0, reason="installing a package with dpkg (even into a scratch root) needs root"),
    pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="no system /usr/bin/python3 to build the venv with"),
]


def _dpkg(root: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = ["dpkg", f"--instdir={root}", f"--admindir={root}/var/lib/dpkg", "--force-script-chrootless",
           "--force-depends", "--log=/dev/null", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def deb(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("deb")
    proc = subprocess.run([str(SRC / "packaging" / "build-deb.sh"), "--out", str(out), "--compress", "gzip",
                           "--level", "1"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [path] = out.glob("aws-s3-wodle_*.deb")
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory, deb) -> Path:
    root = tmp_path_factory.mktemp("root")
    for d in ("info", "updates", "triggers"):
        (root / "var/lib/dpkg" / d).mkdir(parents=True)
    (root / "var/lib/dpkg/status").touch()
    (root / "var/lib/dpkg/available").touch()
    proc = _dpkg(root, "-i", str(deb))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root


def test_package_metadata_and_files(deb, root):
    info = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version", "Architecture", "Depends"],
                          capture_output=True, text=True).stdout
    assert "Package: aws-s3-wodle" in info and "Depends: python3 (>= 3." in info
    status = subprocess.run(["dpkg", f"--admindir={root}/var/lib/dpkg", "-s", "aws-s3-wodle"], capture_output=True,
                            text=True).stdout
    assert "Status: install ok installed" in status
    for path in ("usr/bin/aws-s3-wodle", "usr/sbin/aws-s3-wodle-wazuh-switch", "opt/aws-s3-wodle/bin/python",
                 "lib/systemd/system/aws-s3-wodle.service", "etc/default/aws-s3-wodle", "etc/aws-s3-wodle/ossec.conf",
                 "etc/aws-s3-wodle/rules/amazon_security_lake_rules.xml",
                 "usr/share/aws-s3-wodle/rules/tests/amazon_security_lake.ini",
                 "usr/share/doc/aws-s3-wodle/examples/security_lake.conf", "var/lib/aws-s3-wodle"):
        assert (root / path).exists(), path
    unit = (root / "lib/systemd/system/aws-s3-wodle.service").read_text()
    assert "ExecStart=/usr/bin/aws-s3-wodle --config ${AWS_S3_WODLE_CONFIG}" in unit
    conffiles = (root / "var/lib/dpkg/info/aws-s3-wodle.conffiles").read_text().split()
    assert "/etc/aws-s3-wodle/ossec.conf" in conffiles and "/etc/default/aws-s3-wodle" in conffiles
    # the venv lives at its final path: nothing in it names the build's staging directory
    venv = root / "opt/aws-s3-wodle"
    assert (venv / "pyvenv.cfg").read_text().count("/opt/aws-s3-wodle") == 1
    assert (venv / "bin/aws-s3-wodle").read_text().startswith("#!/opt/aws-s3-wodle/bin/python")
    leftovers = subprocess.run(["grep", "-rl", "aws-s3-wodle-deb.", str(venv)], capture_output=True, text=True).stdout
    assert leftovers == ""
    # the service's environment file may hold AWS keys: not readable by other users
    assert (root / "etc/default/aws-s3-wodle").stat().st_mode & 0o777 == 0o640
    assert "0640" in (root / "etc/default/aws-s3-wodle").read_text()


def test_help_and_version_from_the_installed_files(root):
    # run from the source tree: its aws_s3_wodle folder must not shadow the installed code
    proc = subprocess.run([str(root / "usr/bin/aws-s3-wodle"), "--help"], cwd=SRC, env=_clean_env(),
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "usage: aws-s3-wodle" in proc.stdout
    where = subprocess.run([str(root / "opt/aws-s3-wodle/bin/python"), "-c",
                            "import aws_s3_wodle, boto3, pyarrow, lxml, orjson, prometheus_client; "
                            "print(aws_s3_wodle.__file__)"], cwd="/", env=_clean_env(), capture_output=True,
                           text=True)
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(root / "opt/aws-s3-wodle/lib/"))
    proc = subprocess.run([str(root / "usr/bin/aws-s3-wodle"), "test", "--help"], env=_clean_env(),
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "Exit 0 only when every step passed" in " ".join(proc.stdout.split())


def _clean_env() -> dict:
    """The caller's environment without what would make the packaged venv's Python import anything but its
    own files (a developer's PYTHONPATH pointing at a checkout, a PYTHONHOME)."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def _run_clean(argv: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=_clean_env(), **kwargs)


def _env(lab) -> dict:
    return {**_clean_env(), **lab_env(lab.endpoint, lab.region)}


def test_installed_test_command_and_one_pass(root, lab, tmp_path):
    obj = lab.add_generated(200, seed=70)
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf())
    with DatagramEngine(str(tmp_path / "engine.sock")) as engine:
        proc = subprocess.run([str(root / "usr/bin/aws-s3-wodle"), "test", "--config", str(conf), "--socket",
                               engine.path], env=_env(lab), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "result: every step passed" in proc.stdout
        proc = subprocess.run([str(root / "usr/bin/aws-s3-wodle"), "--config", str(conf), "--once", "--socket",
                               engine.path, "--sqs-wait", "1", "--state-dir", str(tmp_path / "state")], env=_env(lab), capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        engine.wait_for(obj.rows, 5)
        assert len(engine.datagrams) == obj.rows
    assert lab.queue_depth() == 0


def _manager_dir(root: Path) -> Path:
    wazuh = root / "var/ossec"
    shutil.rmtree(wazuh, ignore_errors=True)
    (wazuh / "wodles/aws").mkdir(parents=True, exist_ok=True)
    (wazuh / "etc/rules").mkdir(parents=True, exist_ok=True)
    original = wazuh / "wodles/aws/aws-s3"
    original.write_text("#!/bin/sh\necho the manager's own aws-s3 script\n")
    original.chmod(0o750)
    return wazuh


def test_wazuh_switch_runs_the_managers_command_line(root, lab, fault_proxy):
    wazuh = _manager_dir(root)
    original = (wazuh / "wodles/aws/aws-s3").read_text()
    switch = str(root / "usr/sbin/aws-s3-wodle-wazuh-switch")
    metrics = wazuh / "var/aws-s3-wodle/metrics.prom"
    proc = _run_clean([switch, "enable", "--wazuh-path", str(wazuh), "--", "--sqs-wait", "1", "--metrics-file",
                           str(metrics)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (wazuh / "wodles/aws/aws-s3.orig-aws-s3-wodle").read_text() == original
    assert (wazuh / "etc/rules/amazon_security_lake_rules.xml").exists()
    assert "enabled" in _run_clean([switch, "status", "--wazuh-path", str(wazuh)], capture_output=True,
                                       text=True).stdout
    obj = lab.add_generated(150, seed=71)
    fault_proxy.add(require_external_id(lab.external_id))
    cmd = (f"wodles/aws/aws-s3 --subscriber security_lake --queue {lab.queue_name} --external_id {lab.external_id} "
           f"--iam_role_arn {lab.role_arn} --sts_endpoint {fault_proxy.endpoint} --debug 1 --skip_on_error")
    with DatagramEngine(str(wazuh / "queue/sockets/queue")) as engine:
        proc = subprocess.Popen(cmd.split(" "), cwd=wazuh, env=_env(lab), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        argv_seen = _python_argv(proc.pid)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out
        engine.wait_for(obj.rows, 5)
        assert len(engine.datagrams) == obj.rows and all(d.startswith(HEADER) for d in engine.datagrams)
    assert all(line.split(":")[0] in ("DEBUG", "INFO", "WARNING", "ERROR") for line in out.splitlines() if line)
    assert lab.external_id not in out
    assert argv_seen and lab.external_id not in argv_seen  # the long-running process never shows it
    assert "aws_s3_wodle_events_total" in metrics.read_text()
    proc = _run_clean([switch, "disable", "--wazuh-path", str(wazuh)], capture_output=True, text=True)
    assert proc.returncode == 0 and (wazuh / "wodles/aws/aws-s3").read_text() == original
    assert not (wazuh / "wodles/aws/aws-s3.orig-aws-s3-wodle").exists()
    assert not (wazuh / "etc/rules/amazon_security_lake_rules.xml").exists()


def _python_argv(pid: int, timeout: float = 20.0) -> str:
    """The command line of the process once the wrapper has exec'd into Python ('' if it ended before)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return ""
        if argv and argv[0].endswith(b"python") and any(a.endswith(b"aws-s3-wodle") for a in argv):
            return b" ".join(argv).decode()
        time.sleep(0.01)
    return ""


def test_remove_restores_the_manager_and_leaves_nothing(root, deb):
    wazuh = _manager_dir(root)
    original = (wazuh / "wodles/aws/aws-s3").read_text()
    switch = str(root / "usr/sbin/aws-s3-wodle-wazuh-switch")
    assert _run_clean([switch, "enable", "--wazuh-path", str(wazuh)], capture_output=True).returncode == 0
    proc = _dpkg(root, "--purge", "aws-s3-wodle")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (wazuh / "wodles/aws/aws-s3").read_text() == original  # prerm gave the manager its script back
    shutil.rmtree(wazuh)
    left = [str(p.relative_to(root)) for p in root.rglob("*") if not str(p.relative_to(root)).startswith("var")]
    assert left == [], left
    assert not (root / "var/lib/aws-s3-wodle").exists()
    status = subprocess.run(["dpkg", f"--admindir={root}/var/lib/dpkg", "-s", "aws-s3-wodle"], capture_output=True,
                            text=True)
    assert status.returncode != 0  # no longer known to dpkg
    assert sys.executable  # the machine's own interpreter was never touched
