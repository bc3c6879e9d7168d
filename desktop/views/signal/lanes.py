"""Which channels are shown and which of them are on screen: the channel list with its
select-all box, and the channel groups the view pages through vertically.

Every ticked channel has a lane (lane *k* centred on ``y = -k``); the screen shows as many
lanes as fit at :data:`MIN_LANE_PX` each, and a scroll bar (or Up/Down, a screenful at a time)
moves through the rest, as the MNE browser does. Lanes never get thinner than that, so channel
labels never overlap, whatever the score track under them takes.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

__all__ = ["ChannelPanel", "MIN_LANE_PX", "lanes_that_fit", "clamp_top"]

#: A lane is at least this many screen pixels tall (a label's height and a little air).
MIN_LANE_PX = 22


def lanes_that_fit(height_px: float, n_lanes: int) -> int:
    """How many lanes the screen shows: all of them, or as many as fit at :data:`MIN_LANE_PX`."""
    return max(1, min(n_lanes, int(height_px // MIN_LANE_PX)))


def clamp_top(top: int, n_lanes: int, per_screen: int) -> int:
    """The first lane on screen, kept so that the screen is full."""
    return max(0, min(int(top), n_lanes - per_screen))


class ChannelPanel(QWidget):
    """The channel list (tick = shown, select = gain target) and an "All channels" box.

    Signals: ``changed()`` when the ticked set changes.
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.all_box = QCheckBox("All channels")
        self.all_box.setToolTip("Show every channel (scroll or Up/Down to see the groups that do not fit)")
        self.all_box.setTristate(True)
        self.all_box.clicked.connect(self._all_clicked)
        self.list = QListWidget()
        self.list.setToolTip("Tick channels to show them; select channels to change their own scale (+/-)")
        self.list.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.list.itemChanged.connect(self._item_changed)
        self.list.setMinimumWidth(70)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.all_box)
        lay.addWidget(self.list, 1)

    def set_channels(self, names, checked=None) -> None:
        """List *names*, all ticked (or those in the set *checked*)."""
        self.list.blockSignals(True)
        self.list.clear()
        for i, name in enumerate(names):
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            on = checked is None or i in checked
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            self.list.addItem(item)
        self.list.blockSignals(False)
        self._sync_all_box()

    def checked(self) -> list[int]:
        return [i for i in range(self.list.count())
                if self.list.item(i).checkState() == Qt.CheckState.Checked]

    def selected_rows(self) -> list[int]:
        return sorted(self.list.row(it) for it in self.list.selectedItems())

    def set_all(self, on: bool) -> None:
        state = Qt.CheckState.Checked if on else Qt.CheckState.Unchecked
        self.list.blockSignals(True)
        for i in range(self.list.count()):
            self.list.item(i).setCheckState(state)
        self.list.blockSignals(False)
        self._sync_all_box()
        self.changed.emit()

    def mark(self, row: int, note: str) -> None:
        """Show *note* (a channel's own scale, say) after the name of *row*."""
        item = self.list.item(row)
        base = item.data(Qt.ItemDataRole.UserRole) or item.text()
        item.setData(Qt.ItemDataRole.UserRole, base)
        self.list.blockSignals(True)
        item.setText(f"{base}  ({note})" if note else base)
        self.list.blockSignals(False)

    def _all_clicked(self) -> None:
        # a click on a partly ticked box ticks everything (Qt would cycle to "none" first)
        self.set_all(len(self.checked()) < self.list.count())

    def _item_changed(self, *_):
        self._sync_all_box()
        self.changed.emit()

    def _sync_all_box(self) -> None:
        n, on = self.list.count(), len(self.checked())
        state = (Qt.CheckState.Checked if n and on == n else
                 Qt.CheckState.Unchecked if on == 0 else Qt.CheckState.PartiallyChecked)
        self.all_box.blockSignals(True)
        self.all_box.setCheckState(state)
        self.all_box.blockSignals(False)
