"""A selection list whose ticks read without colour: ✓ when picked, a blank when not (Textual's draws an X for
both and tells them apart by colour alone, which a vt100 or NO_COLOR terminal loses)."""

from textual.strip import Strip
from textual.widgets import SelectionList
from textual.widgets._toggle_button import ToggleButton

PICKED, NOT_PICKED = "✓", " "


class TickList(SelectionList):
    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        segments = list(strip)
        # The button is the second segment of a line that has one (SelectionList puts [left][inner][right] first).
        if len(segments) < 3 or segments[1].text != ToggleButton.BUTTON_INNER:
            return strip
        _, scroll_y = self.scroll_offset
        try:
            picked = self.get_option_at_index(scroll_y + y).value in self._selected
        except Exception:  # noqa: BLE001 - a line with no option under it: drawn as it was
            return strip
        tick = segments[1]
        segments[1] = type(tick)(PICKED if picked else NOT_PICKED, tick.style, tick.control)
        return Strip(segments, strip.cell_length)
