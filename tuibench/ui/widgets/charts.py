"""Line charts on textual-plotext, redrawn only when asked (the screens do it at 2-4 Hz, never per event)."""

from collections.abc import Sequence

from textual_plotext import PlotextPlot


class Chart(PlotextPlot):
    """A small titled chart of one or more series; empty series show 'waiting for data'."""

    DEFAULT_CSS = "Chart { height: 1fr; min-height: 6; }"

    def __init__(self, title: str, xlabel: str = "", ylabel: str = "", **kwargs):
        super().__init__(**kwargs)
        self._title, self._xlabel, self._ylabel = title, xlabel, ylabel

    def on_mount(self) -> None:
        self.show([])

    def set_labels(self, title: str, xlabel: str = "", ylabel: str = "") -> None:
        self._title, self._xlabel, self._ylabel = title, xlabel, ylabel

    def show(self, series: Sequence[tuple[str, Sequence[float], Sequence[float]]], scatter: bool = False,
             marks: Sequence[float] = ()) -> None:
        """`marks`: x values drawn as vertical lines (a run's steady window)."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self._title if any(xs for _, xs, _ in series) else f"{self._title} · waiting for data")
        plt.xlabel(self._xlabel)
        plt.ylabel(self._ylabel)
        for label, xs, ys in series:
            if xs:
                (plt.scatter if scatter else plt.plot)(list(xs), list(ys), label=label, marker="braille")
        for x in marks:
            plt.vline(x, "gray")
        self.refresh()

    def histogram(self, series: Sequence[tuple[str, Sequence[float]]], bins: int = 30) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self._title)
        plt.xlabel(self._xlabel)
        for label, values in series:
            if values:
                plt.hist(list(values), bins, label=label)
        self.refresh()

    def bars(self, labels: Sequence[str], values: Sequence[float]) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self._title if values else f"{self._title} · waiting for data")
        plt.ylabel(self._ylabel)
        if values:
            plt.bar(list(labels), list(values), marker="sd")
        self.refresh()
