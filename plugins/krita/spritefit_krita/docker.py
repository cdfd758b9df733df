"""The SpriteFit docker: pick a target and sprites, set the fit's options (built from the worker's
option schema: the basic ones shown, the advanced ones folded away),
Run, watch progress and a live preview, Cancel (keeps the best result) and Apply (adds the
result as one group of layers, one undo step). The document is only read before the run and
only changed by Apply. Live (live.py) follows the target while the artist paints: each settled
stroke refits the sprites it touches, the preview shows each frame, Apply adds the current one.

Its Engine box installs, upgrades and repairs SpriteFit's managed engine (spritefit_engine) with
progress, pip's log and Cancel; Run stays disabled, saying why, until an engine is ready (or the
advanced Worker Python setting names one)."""
from __future__ import annotations

import os
from typing import Any, Callable

from krita import DockWidget, Krita
from PyQt5.QtCore import Qt, QTimer
from PyQt5.QtGui import QPixmap
from PyQt5.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                             QPlainTextEdit, QProgressBar, QPushButton, QVBoxLayout, QWidget)

from .connection import WorkerConnection
from .document import DocumentError, paint_layers
from .job import FitJob
from .live import LiveJob
from .settings import Settings
from .options_form import OptionControls
from .spritefit_client import ADVANCED, BASIC, WorkerError, chosen_options, shown_options, with_cluster
from .spritefit_engine import (READY, TORCH_BUILDS, BackgroundInstall, Engine, EngineError, EngineStatus,
                               InstallOptions, plugin_wheel_folders)

DOCKER_ID = "spritefit_docker"
PACKS = ("shapes", "brush", "leaves")
INSTANCES: list = []      # the dockers created (one per main window), for the action and tests


class LayerComboBox(QComboBox):
    """Target picker whose layer list is read from the document each time it opens."""

    def __init__(self, refresh, parent=None):
        super().__init__(parent)
        self.refresh = refresh

    def showPopup(self):
        self.refresh()
        super().showPopup()


class SpriteFitDocker(DockWidget):
    def __init__(self):
        super().__init__()
        INSTANCES.append(self)
        self.setWindowTitle("SpriteFit")
        self.settings = Settings(Krita.instance())
        self.worker = WorkerConnection(self)
        self.worker.received.connect(self._on_event)
        self.worker.stopped.connect(self._on_worker_stopped)
        self.job: FitJob | None = None
        self.live: LiveJob | None = None
        self.live_timer = QTimer(self)
        self.live_timer.setInterval(100)      # as krita-ai-diffusion's live mode: look ten times a second
        self.live_timer.timeout.connect(self._poll_live)
        self.live_document, self.live_target_index = None, -1   # what the live session follows
        self.target_layers: list = []
        self.engine = Engine()
        self.install: BackgroundInstall | None = None
        self.log_lines_shown = 0   # of the install's log, already in the log view
        self.install_timer = QTimer(self)
        self.install_timer.setInterval(200)
        self.install_timer.timeout.connect(self._poll_install)
        self._build()
        self._load_settings()
        self._update()
        notifier = Krita.instance().notifier()
        notifier.setActive(True)
        notifier.applicationClosing.connect(self.worker.shutdown)

    # --- widgets ---------------------------------------------------------------------------------
    def _build(self) -> None:
        root = QWidget(self)
        form = QFormLayout()
        self.target = LayerComboBox(self._refresh_targets)
        self.sprite_source = QComboBox()
        self.sprite_source.addItem("Selected layers", ("layers", ""))
        for pack in PACKS:
            self.sprite_source.addItem(f"Built-in pack: {pack}", ("pack", pack))
        self.sprite_source.addItem("Folder…", ("folder", ""))
        self.sprite_source.addItem("Refit the last result around locked layers", ("refit", ""))
        self.sprite_source.activated.connect(self._sprite_source_chosen)
        form.addRow("Target", self.target)
        form.addRow("Sprites", self.sprite_source)
        self.fit_options = OptionControls()          # the fit's options, from the worker's schema
        self.fit_options.add_rows(form, shown_options(BASIC))
        self.python = QLineEdit()
        self.python.setPlaceholderText("empty: the engine above")
        self.python.setToolTip("The python of an environment where SpriteFit is installed, instead of the "
                               "managed engine; $SPRITEFIT_PYTHON overrides both")
        self.python.editingFinished.connect(self._worker_python_edited)

        self.run_button, self.cancel_button = QPushButton("Run"), QPushButton("Cancel")
        self.apply_button, self.discard_button = QPushButton("Apply"), QPushButton("Discard")
        self.run_button.clicked.connect(self.run_from_widgets)
        self.cancel_button.clicked.connect(self.cancel)
        self.apply_button.clicked.connect(self.apply)
        self.discard_button.clicked.connect(self.discard)
        self.live_toggle = QCheckBox("Live")
        self.live_toggle.setToolTip("Follow the target while you paint: each stroke refits the sprites it touches; "
                                    "Apply adds the current arrangement as layers")
        self.live_toggle.toggled.connect(self._live_toggled)
        buttons = QHBoxLayout()
        for button in (self.run_button, self.live_toggle, self.cancel_button, self.apply_button, self.discard_button):
            buttons.addWidget(button)
        self.progress = QProgressBar()
        self.status = QLabel("Choose a target and sprites, then Run.")
        self.status.setWordWrap(True)
        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignCenter)
        self.preview.setMinimumHeight(120)

        layout = QVBoxLayout(root)
        layout.addWidget(self._build_engine_box())
        layout.addLayout(form)
        layout.addWidget(self.fit_options.advanced_box(shown_options(ADVANCED), [
            ("Worker Python", self.python), ("Engine built from", self.engine_python),
            ("PyTorch build", self.engine_torch)]))
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.preview, 1)
        self.setWidget(root)
        self._refresh_targets()

    def _build_engine_box(self) -> QGroupBox:
        box = QGroupBox("Engine")
        self.engine_state = QLabel()
        self.engine_state.setWordWrap(True)
        self.engine_button = QPushButton("Install")
        self.engine_button.clicked.connect(self.install_engine)
        self.engine_cancel = QPushButton("Cancel install")
        self.engine_cancel.clicked.connect(self.cancel_install)
        self.engine_log_button = QPushButton("Log")
        self.engine_log_button.setCheckable(True)
        self.engine_log = QPlainTextEdit()
        self.engine_log.setReadOnly(True)
        self.engine_log.setMaximumBlockCount(2000)
        self.engine_log.setVisible(False)
        self.engine_log_button.toggled.connect(self.engine_log.setVisible)
        self.engine_progress = QProgressBar()
        self.engine_progress.setRange(0, 1000)
        self.engine_progress.setVisible(False)
        buttons = QHBoxLayout()
        for button in (self.engine_button, self.engine_cancel, self.engine_log_button):
            buttons.addWidget(button)
        self.engine_python = QLineEdit()
        self.engine_python.setPlaceholderText("empty: one found on this computer")
        self.engine_python.setToolTip("The Python 3.10+ the engine's environment is made from")
        self.engine_torch = self._combo(TORCH_BUILDS)
        self.engine_torch.setToolTip("auto: the CUDA build when an NVIDIA driver is present, else the CPU build")
        layout = QVBoxLayout(box)     # what it is built from: in the Advanced box
        for widget in (self.engine_state, self.engine_progress):
            layout.addWidget(widget)
        layout.addLayout(buttons)
        layout.addWidget(self.engine_log)
        return box

    def _combo(self, items) -> QComboBox:
        combo = QComboBox()
        combo.addItems(list(items))
        return combo

    def _load_settings(self) -> None:
        options = self.settings.options()
        for name in self.fit_options.widgets:
            self.fit_options.set_value(name, options[name])
        python, torch = self.settings.engine_choices()
        self.engine_python.setText(python)
        self.engine_torch.setCurrentText(torch)
        self.folder = options["folder"]
        for i in range(self.sprite_source.count()):
            source, value = self.sprite_source.itemData(i)
            if source == options["sprite_source"] and (source != "pack" or value == self.folder):
                self.sprite_source.setCurrentIndex(i)
        self.python.setText(self.settings.worker_python())

    def canvasChanged(self, canvas) -> None:   # required by DockWidget
        self._refresh_targets()

    def _refresh_targets(self) -> None:
        current = self.target.currentText()
        self.target.clear()
        self.target.addItem("Whole image")
        self.target.addItem("Active layer")
        document = Krita.instance().activeDocument()
        self.target_layers = paint_layers(document) if document is not None else []
        for node in self.target_layers:
            self.target.addItem(f"Layer: {node.name()}")
        index = self.target.findText(current)
        self.target.setCurrentIndex(max(index, 0))

    def _sprite_source_chosen(self, index: int) -> None:
        if self.sprite_source.itemData(index)[0] == "folder":
            folder = QFileDialog.getExistingDirectory(self, "Folder of sprite images", self.folder)
            if folder:
                self.folder = folder
                self.sprite_source.setItemText(index, f"Folder: {folder}")

    # --- what the widgets say ---------------------------------------------------------------------
    def options(self) -> dict:
        """The options to send: those the controls set (untouched ones are left to the engine)."""
        values = self.fit_options.values()
        return with_cluster(chosen_options(values), values.get("cluster"))

    def set_option(self, name: str, value) -> None:
        self.fit_options.set_value(name, value)

    def chosen_target(self, document):
        """None for the whole image, else the target layer."""
        index = self.target.currentIndex()
        if index <= 0:
            return None
        if index == 1:
            return document.activeNode()
        return self.target_layers[index - 2]

    def chosen_sprites(self) -> tuple[str, list, str]:
        source, value = self.sprite_source.currentData()
        if source == "layers":
            window = Krita.instance().activeWindow()
            view = window.activeView() if window is not None else None
            return source, list(view.selectedNodes()) if view is not None else [], ""
        return source, [], (value if source == "pack" else self.folder)

    # --- the engine ---------------------------------------------------------------------------------
    def install_engine(self) -> None:
        """Install, Upgrade or Repair: a new engine beside the one in use, on a thread of its own."""
        if self.install is not None:
            return
        self.engine_log.clear()
        self.log_lines_shown = 0
        folders = plugin_wheel_folders(os.path.dirname(os.path.abspath(__file__)))
        python, torch = self.engine_python.text().strip(), self.engine_torch.currentText()
        self.settings.set_engine_choices(python, torch)
        try:
            self.install = BackgroundInstall(self.engine, InstallOptions(python=python or None, torch=torch,
                                                                         wheel_folders=folders))
        except EngineError as exc:
            self.engine_state.setText(str(exc))
            return
        self.install_timer.start()
        self._update()

    def cancel_install(self) -> None:
        if self.install is not None:
            self.install.cancel()

    def _poll_install(self) -> None:
        install = self.install
        if install is None:
            return
        lines = install.log[self.log_lines_shown:]   # the install's thread only appends to it
        self.log_lines_shown += len(lines)
        for line in lines:
            self.engine_log.appendPlainText(line)
        self.engine_progress.setValue(int(install.fraction * 1000))
        self.engine_state.setText(install.message)
        if install.done.is_set():
            self.install_timer.stop()
            self.install = None
            if install.error:
                self.engine_log.appendPlainText(install.error)
            self._update(install.error)

    def _worker_python_edited(self) -> None:
        self.settings.set_worker_python(self.python.text().strip())
        self._update()

    def run_blocked_reason(self, status: EngineStatus | None = None) -> str | None:
        """Why Run is disabled: no engine is ready and no worker Python is set by hand."""
        if os.environ.get("SPRITEFIT_PYTHON") or self.python.text().strip():
            return None
        status = status or self.engine.status()
        return None if status.state == READY else status.detail

    def _update_engine(self, status: EngineStatus, error: str | None = None) -> None:
        installing = self.install is not None
        if not installing:
            self.engine_state.setText(error or status.detail)
        self.engine_button.setText(status.action or "Install")
        self.engine_button.setEnabled(not installing and status.action is not None)
        self.engine_cancel.setVisible(installing)
        self.engine_progress.setVisible(installing)

    # --- actions ------------------------------------------------------------------------------------
    def _chosen_inputs(self) -> tuple[Any, Any, str, list, str]:
        """(document, target layer or None, sprite source, sprite layers, pack or folder) as the
        widgets say, for a run or a live session."""
        document = Krita.instance().activeDocument()
        source, layers, pack_or_folder = self.chosen_sprites()
        try:
            target = self.chosen_target(document) if document is not None else None
        except IndexError:
            target = None
        return document, target, source, layers, pack_or_folder

    def run_from_widgets(self) -> None:
        document, target, source, layers, pack_or_folder = self._chosen_inputs()
        options = self.options()
        self.settings.set_options(dict(self.fit_options.values(), sprite_source=source, folder=self.folder))
        self.start_run(document, target, source, layers, pack_or_folder, options, self._sprite_alpha())

    def start_run(self, document, target_node, sprite_source: str, sprite_layers, pack_or_folder: str,
                  options: dict, sprite_alpha: str = "auto") -> bool:
        """Read the inputs, start the worker if needed and send the job; False (with the reason in
        the status line) when something stops it."""
        if self.job is not None and self.job.state in ("running", "cancelling"):
            return False
        if self.job is not None:
            self.job.discard()
        self.job = self._with_worker(lambda: FitJob(document, target_node, sprite_source, sprite_layers,
                                                    pack_or_folder, options, sprite_alpha))
        if self.job is None:
            return False
        self.worker.send(self.job.request())
        self._update()
        return True

    def _with_worker(self, make_job):
        """make_job() (it reads the document) with the worker started; None, the reason in the
        status line, when either fails."""
        try:
            job = make_job()
            self.worker.start(self.python.text().strip(), self.engine)
        except (DocumentError, WorkerError) as exc:
            self._show(str(exc))
            return None
        return job

    def cancel(self) -> None:
        if self.job is not None and self.job.state == "running":
            self.job.cancel_requested()
            self.worker.cancel(self.job.id)
            self._update()

    def apply(self) -> None:
        if self.live is not None and self.live.state == "live":
            self.worker.send(self.live.apply_request())
            return
        if self.job is None:
            return
        try:
            self.job.apply()
        except DocumentError as exc:
            self._show(str(exc))
            return
        self._update()

    def discard(self) -> None:
        if self.job is not None and self.job.state == "done":
            self.job.discard()
            self.job = None
            self.preview.clear()
            self._show("Result discarded; the image was not changed.")

    # --- live mode ---------------------------------------------------------------------------------
    def _live_toggled(self, on: bool) -> None:
        if on:
            self.start_live_from_widgets()
        else:
            self.stop_live()

    def start_live_from_widgets(self) -> bool:
        return self.start_live(*self._chosen_inputs(), self.options, self._sprite_alpha())

    def _sprite_alpha(self) -> str:
        return str(self.fit_options.value("sprite_alpha"))

    def start_live(self, document, target_node, sprite_source: str, sprite_layers, pack_or_folder: str,
                   options: Callable[[], dict], sprite_alpha: str = "auto") -> bool:
        """Start following the target; False (the reason in the status line) when something stops it."""
        if self.job is not None and self.job.state in ("running", "cancelling"):
            self._show("Live starts once the run has finished.")
            self.live_toggle.setChecked(False)
            return False
        self.live = self._with_worker(lambda: LiveJob(document, target_node, sprite_source, sprite_layers,
                                                      pack_or_folder, options, sprite_alpha))
        if self.live is None:
            self.live_toggle.setChecked(False)
            return False
        self.live_document, self.live_target_index = document, self.target.currentIndex()
        self.worker.send(self.live.start)
        self.live_timer.start()
        self._update()
        return True

    def stop_live(self) -> None:
        self.live_timer.stop()
        if self.live is not None and self.live.state in ("starting", "live"):
            self.worker.send(self.live.stop_request())
        if self.live_toggle.isChecked():
            self.live_toggle.setChecked(False)

    def _poll_live(self) -> None:
        live = self.live
        if live is None or live.state not in ("starting", "live"):
            self.live_timer.stop()
            return
        # Closing the document or choosing another target ends the session.
        if self.live_document not in Krita.instance().documents() or self.target.currentIndex() != self.live_target_index:
            self.stop_live()
            return
        update = live.poll()
        if update is not None:
            self.worker.send(update)
        self.status.setText(live.status_line())

    # --- worker events -----------------------------------------------------------------------------
    def _on_event(self, event: dict) -> None:
        if self.live is not None and event.get("job") == self.live.id:
            self.live.handle(event)
            if self.live.state not in ("starting", "live") and self.live_toggle.isChecked():
                self.live_toggle.setChecked(False)
            self._update()
            return
        if self.job is not None:
            self.job.handle(event)
            self._update()

    def _on_worker_stopped(self, detail: str) -> None:
        if self.live is not None and detail:
            self.live.worker_stopped(detail)
            self.live_toggle.setChecked(False)
        if self.job is not None and detail:
            self.job.worker_stopped(detail)
        self._update()

    def _show(self, message: str) -> None:
        self.status.setText(message)
        self._update_buttons()

    def _update(self, engine_error: str | None = None) -> None:
        status = self.engine.status()   # read once: the engine box and the Run button both show it
        self._update_engine(status, engine_error)
        job = self.job
        if self.live is not None and self.live.state in ("starting", "live"):
            self.status.setText(self.live.status_line())
            self._show_preview(self.live.preview)
        elif job is not None:
            self.status.setText(job.message)
            done, total = job.progress
            self.progress.setRange(0, max(total, 1))
            self.progress.setValue(done)
            self._show_preview(job.preview)
        self._update_buttons(status)

    def _show_preview(self, path: str | None) -> None:
        if path:
            pixmap = QPixmap(path)
            if not pixmap.isNull():
                self.preview.setPixmap(pixmap.scaled(self.preview.width(), self.preview.height(),
                                                     Qt.KeepAspectRatio, Qt.SmoothTransformation))

    def _update_buttons(self, status: EngineStatus | None = None) -> None:
        state = self.job.state if self.job is not None else "idle"
        live = self.live is not None and self.live.state in ("starting", "live")
        busy = state in ("running", "cancelling") or live
        blocked = self.run_blocked_reason(status)
        self.run_button.setEnabled(not busy and blocked is None and self.install is None)
        self.live_toggle.setEnabled(live or (not busy and blocked is None and self.install is None))
        self.run_button.setToolTip(blocked or "")
        if blocked and state == "idle" and self.install is None:
            self.status.setText(blocked)
        self.cancel_button.setEnabled(state == "running")
        self.apply_button.setEnabled(state == "done" or (self.live is not None and self.live.state == "live"))
        self.discard_button.setEnabled(state == "done")
