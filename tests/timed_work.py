"""Work for the timing children of ``minigrad.bench.step_times.time_in_own_processes`` in
tests: each call writes a line to a log file (who called what, in which process, when), so
the parent can see the order of the calls across processes."""
import os
import time


class LoggedWork:
    def __init__(self, name, log, fail_on=None):
        self.name, self.log, self.fail_on = name, log, fail_on

    def _called(self, call):
        if call == self.fail_on:
            raise ValueError(f"{self.name}'s {call} fails on purpose")
        with open(self.log, "a", encoding="utf-8") as handle:
            handle.write(f"{self.name} {call} {os.getpid()} {time.monotonic():.6f}\n")

    def forward(self):
        self._called("forward")

    def training_step(self):
        self._called("training_step")


def side_a(log, fail_on=None):
    return LoggedWork("side_a", log, fail_on)


def side_b(log, fail_on=None):
    return LoggedWork("side_b", log, fail_on)


def no_work(**keywords):
    raise RuntimeError("this builder cannot build anything")


class VariableReader:
    """Work whose forward writes the value of an environment variable in its process to the log."""

    def __init__(self, log, variable):
        self.log, self.variable = log, variable

    def forward(self):
        with open(self.log, "a", encoding="utf-8") as handle:
            handle.write(f"{os.environ.get(self.variable, '-')}\n")


def variable_reader(log, variable):
    return VariableReader(log, variable)
