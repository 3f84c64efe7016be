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


_SI = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def fmt_si(value: float | None, unit: str = "") -> str:
    """3 significant digits with an SI prefix: 55.5G, 453M, 17.7k."""
    if value is None:
        return NA
    for scale, prefix in _SI:
        if abs(value) >= scale * 0.9995:  # so 999.96 reads 1k, not 1e+03
            return f"{value / scale:.3g}{prefix}{unit}"
    return f"{value:.3g}{unit}"
