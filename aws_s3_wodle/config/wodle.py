"""One `<wodle name="aws-s3">` section (its schedule and blocks) and the whole configuration."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from aws_s3_wodle.config.options import DAY, MONTH, WEEK, Location, option, parse_day_of_month, parse_interval, parse_time_of_day, parse_wday, parse_yes_no

DEFAULT_WAZUH_PATH = "/var/ossec"  # the one place this default is written; every --wazuh-path takes it
DEFAULT_CONFIG = f"{DEFAULT_WAZUH_PATH}/etc/ossec.conf"


@dataclass
class Wodle:
    """One `<wodle name="aws-s3">` section: its schedule and its blocks."""

    disabled: bool = option(parse_yes_no, default=False, help="'yes' turns the whole section off.")
    interval: int = option(parse_interval, default=600, help="Time between runs of each block: a number with "
                                                             "suffix s, m, h, d, w or M (30 days); bare = seconds; at "
                                                             "most one year. Whole months with day, whole weeks with "
                                                             "wday, whole days with time (as Wazuh).")
    run_on_start: bool = option(parse_yes_no, default=True, help="'yes' runs every block as soon as the wodle "
                                                                "starts; 'no' waits one interval (or the schedule).")
    skip_on_error: bool = option(parse_yes_no, default=True, help="'yes' goes on with the next object when one "
                                                                  "fails; 'no' ends the run at the first failure.")
    time: Optional[str] = option(parse_time_of_day, help="HH:MM of the first run; later runs follow the interval.")
    day: Optional[int] = option(parse_day_of_month, help="Day of the month of the first run (with time); not with "
                                                         "wday.")
    wday: Optional[int] = option(parse_wday, help="Day of the week of the first run (with time).")
    blocks: list = field(default_factory=list)
    location: Optional[Location] = None

    def validate(self) -> None:
        """Wazuh's scheduling rules: `day` and `wday` exclude each other, and the interval must be whole
        months with `day`, whole weeks with `wday`, whole days with `time`."""
        if self.day is not None and self.wday is not None:
            raise ValueError("<day> and <wday> cannot be used together; keep one")
        for given, unit, name, example in ((self.day, MONTH, "months (suffix M)", "1M"),
                                           (self.wday, WEEK, "weeks (suffix w)", "1w"),
                                           (self.time, DAY, "days (suffix d)", "1d")):
            if given is not None:
                if self.interval % unit:
                    what = "day" if unit == MONTH else "wday" if unit == WEEK else "time"
                    raise ValueError(f"with <{what}>, <interval> must be a whole number of {name}, e.g. "
                                     f"'{example}', not {self.interval} s")
                break


@dataclass
class Config:
    path: str
    wodles: list[Wodle]

    def enabled_blocks(self) -> list[tuple[Wodle, Any]]:
        return [(w, b) for w in self.wodles if not w.disabled for b in w.blocks]
