"""The worker process seen from Krita's event loop: a QProcess speaking JSON lines, so Krita stays
responsive while the fit runs in another process (no compute in Krita's interpreter)."""
from __future__ import annotations

from collections import deque

from PyQt5.QtCore import QObject, QProcess, QProcessEnvironment, pyqtSignal

from .spritefit_client import LineDecoder, clean_environment, encode_request, worker_command
from .spritefit_engine import engine_python

STDERR_LINES_KEPT = 20


class WorkerConnection(QObject):
    received = pyqtSignal(dict)       # every event the worker writes (not "event": QObject.event)
    stopped = pyqtSignal(str)         # the process ended; the text says how (empty after a shutdown)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.process = QProcess(self)         # started again for each worker, when one has ended
        self.process.readyReadStandardOutput.connect(self._read_events)
        self.process.readyReadStandardError.connect(self._read_stderr)
        self.process.finished.connect(self._finished)
        self.process.errorOccurred.connect(self._failed_to_start)
        self.decoder = LineDecoder()
        self.stderr_tail: deque = deque(maxlen=STDERR_LINES_KEPT)
        self.shutting_down = False

    def running(self) -> bool:
        return self.process.state() != QProcess.NotRunning

    def start(self, configured_python: str, engine=None) -> None:
        """Start the worker unless it runs already: $SPRITEFIT_PYTHON, the Worker Python setting,
        else the managed engine. Raises the client's WorkerError when none can run."""
        if self.running():
            return
        command = worker_command(engine_python(configured_python, engine))
        environment = QProcessEnvironment()
        for key, value in clean_environment().items():
            environment.insert(key, value)
        self.decoder, self.shutting_down = LineDecoder(), False
        self.stderr_tail.clear()
        self.process.setProcessEnvironment(environment)
        self.process.start(command[0], command[1:])

    def send(self, data: bytes) -> None:
        if self.running():
            self.process.write(data)

    def cancel(self, job: str) -> None:
        self.send(encode_request("cancel", job=job))

    def shutdown(self) -> None:
        """Ask the worker to leave, and make sure it does."""
        if self.running():
            self.shutting_down = True
            self.send(encode_request("shutdown"))
            self.process.closeWriteChannel()
            if not self.process.waitForFinished(3000):
                self.process.kill()
                self.process.waitForFinished(3000)

    def kill(self) -> None:
        if self.running():
            self.process.kill()

    def _read_events(self) -> None:
        for event in self.decoder.feed(bytes(self.process.readAllStandardOutput())):
            self.received.emit(event)

    def _read_stderr(self) -> None:
        text = bytes(self.process.readAllStandardError()).decode("utf-8", errors="replace")
        self.stderr_tail.extend(line for line in text.splitlines() if line.strip())

    def _finished(self, exit_code: int, _status) -> None:
        self._read_events()
        if self.shutting_down:
            self.stopped.emit("")
            return
        detail = f" (exit code {exit_code})"
        if self.stderr_tail:
            detail += ": " + self.stderr_tail[-1]
        self.stopped.emit(detail)

    def _failed_to_start(self, error) -> None:
        if error == QProcess.FailedToStart:
            self.stopped.emit(f": it could not be started ({self.process.errorString()})")
