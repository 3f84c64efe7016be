"""Formatting quantities for people. None is shown as N/A, never as 0."""

NA = "N/A"


def fmt(value: float | int | None, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return NA
    text = f"{value:,}" if isinstance(value, int) else f"{value:,.{digits}f}"
    return f"{text} {unit}".rstrip()


def fmt_share(part: float | None, whole: float | None) -> str:
    if part is None or not whole:
        return NA
    return f"{100.0 * part / whole:.0f}%"
