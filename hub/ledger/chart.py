"""The adoption report as a chart a person reads at a glance (matplotlib, PNG or SVG).

One horizontal stacked bar per organization and period: documents accepted with valid
specialized signatures, accepted otherwise (the national-axis waiver), then refusals by class;
the bar's label gives the share with valid signatures and the share whose main PDF carries both
the person's and the organization's signature. Vietnamese labels first, English after; axes,
title and legend. Needs ``matplotlib`` (imported here only, with the non-interactive backend).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from hub.ledger.report import CLASS_LABELS_VI, CLASSES, AdoptionRow

_COLOURS = {"valid": "#1b7837", "accepted_other": "#a6dba0", "signature": "#d6604d",
            "certificate": "#f4a582", "format": "#92c5de", "routing": "#4393c3",
            "duplicate": "#bababa", "other": "#878787"}


def render_chart(rows: Sequence[AdoptionRow], *, fmt: str = "png",
                 title: str = "Văn bản điện tử gửi qua hub / Documents sent through the hub"
                 ) -> bytes:
    """The chart as ``png`` or ``svg`` bytes (text kept as text in SVG)."""
    if fmt not in ("png", "svg"):
        raise ValueError("the chart is drawn as png or svg")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    plt.rcParams["svg.fonttype"] = "none"  # searchable, selectable Vietnamese text
    plt.rcParams["font.family"] = "DejaVu Sans"  # has every Vietnamese glyph
    labels = [f"{r.organ_id} · {r.period}" for r in rows] or ["(không có dữ liệu / no data)"]
    height = max(2.5, 0.55 * len(labels) + 1.8)
    fig, ax = plt.subplots(figsize=(10, height))
    try:
        positions = list(range(len(rows)))
        left = [0] * len(rows)
        series: list[tuple[str, str, list[int]]] = [
            ("valid", "Ký số chuyên dùng hợp lệ / valid specialized signatures",
             [r.signed_valid for r in rows]),
            ("accepted_other", "Nhận, chữ ký khác / accepted otherwise",
             [r.accepted - r.signed_valid for r in rows]),
        ] + [(c, f"Từ chối: {CLASS_LABELS_VI[c]} / refused: {c}",
              [r.refused.get(c, 0) for r in rows]) for c in CLASSES]
        for key, label, values in series:
            if not any(values):
                continue
            ax.barh(positions, values, left=left, color=_COLOURS[key], label=label,
                    edgecolor="white", linewidth=0.5)
            left = [a + b for a, b in zip(left, values, strict=True)]
        for y, r in zip(positions, rows, strict=True):
            ax.text(r.sent, y, f"  {r.sent} · hợp lệ {r.share_valid:.0%}"
                               f" · PDF đủ chữ ký {r.share_pdf_both:.0%}",
                    va="center", fontsize=8)
        ax.set_yticks(positions or [0], labels)
        ax.invert_yaxis()
        ax.set_xlabel("Số văn bản / Number of documents")
        ax.set_ylabel("Đơn vị · kỳ / Organization · period")
        ax.set_title(title)
        peak = max((r.sent for r in rows), default=1)
        ax.set_xlim(0, peak * 1.45 + 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if rows:
            ax.legend(loc="lower right", fontsize=7, frameon=True)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=120, metadata={"Date": None} if fmt == "svg"
                    else None)
        return buffer.getvalue()
    finally:
        plt.close(fig)
