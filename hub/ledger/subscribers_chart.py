"""The plan's figures as one chart a person reads at a glance (matplotlib, PNG or SVG).

Top: per organization (the whole registry first), the share of heads and deputies and the
share of division heads and specialists who signed at least one document in the report's last
period, against the 100 % line of the plan, with "signed / listed" beside each bar. Bottom
left: certificates issued per year and their running total against the plan's 3,000 for
2019–2025. Bottom right: the counts that need someone's attention — revoked certificates still
signing (red when there is any), signatures from certificates the registry does not know,
certificates expiring within 30/60/90 days, active certificates never used. Vietnamese first,
English after; needs ``matplotlib`` (imported here only, non-interactive backend), as
:mod:`hub.ledger.chart` does.
"""

from __future__ import annotations

import io

from hub.ledger.subscribers_report import (
    ALL,
    CERTIFICATES_TARGET,
    EXPIRY_WINDOWS,
    PLAN_YEARS,
    GroupFigures,
    OrganizationRow,
    PlanReport,
)

_LEADERS = "#1b7837"
_STAFF = "#5aae61"
_ISSUED = "#4393c3"
_ALARM = "#b2182b"
_CALM = "#4d4d4d"


def _last_period(rows: tuple[OrganizationRow, ...]) -> list[OrganizationRow]:
    if not rows:
        return []
    last = max(r.period for r in rows)
    chosen = [r for r in rows if r.period == last]
    return sorted(chosen, key=lambda r: (r.organ_id != ALL, r.organ_id))


def render_chart(report: PlanReport, *, fmt: str = "png") -> bytes:
    """The chart as ``png`` or ``svg`` bytes (text kept as text in SVG)."""
    if fmt not in ("png", "svg"):
        raise ValueError("the chart is drawn as png or svg")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    plt.rcParams["svg.fonttype"] = "none"
    plt.rcParams["font.family"] = "DejaVu Sans"
    rows = _last_period(report.organizations)
    period = rows[0].period if rows else "-"
    top_height = max(2.5, 0.5 * len(rows) + 1.2)
    fig = plt.figure(figsize=(11, top_height + 4.2))
    grid = fig.add_gridspec(2, 2, height_ratios=[top_height, 3.6], width_ratios=[1.4, 1])
    try:
        ax = fig.add_subplot(grid[0, :])
        labels = [("Toàn tỉnh / all" if r.organ_id == ALL else r.organ_id) for r in rows]
        positions = list(range(len(rows)))
        height = 0.38
        series: list[tuple[float, str, str, list[GroupFigures]]] = [
            (-height / 2, _LEADERS, "Thủ trưởng, cấp phó / heads and deputies (100 % by 2020)",
             [r.leaders for r in rows]),
            (height / 2, _STAFF, "Trưởng phòng, chuyên viên / division heads and specialists"
             " (100 % by 2025)", [r.staff for r in rows]),
        ]
        for offset, colour, name, groups in series:
            ax.barh([p + offset for p in positions], [g.share_signed for g in groups],
                    height=height, color=colour, label=name)
            for p, g in zip(positions, groups, strict=True):
                ax.text(min(g.share_signed, 1.0) + 0.01, p + offset,
                        f"{g.signed}/{g.total} ký · {g.certified} có CTS" if g.total else "-",
                        va="center", fontsize=7)
        ax.axvline(1.0, color=_ALARM, linestyle="--", linewidth=1)
        ax.text(1.005, 0.98, "mục tiêu / target 100 %", color=_ALARM, fontsize=7, va="top",
                transform=ax.get_xaxis_transform())
        ax.set_yticks(positions or [0], labels or ["(không có dữ liệu / no data)"])
        ax.invert_yaxis()
        ax.set_xlim(0, 1.35)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("Tỷ lệ đã ký số ít nhất một văn bản / share who signed at least one"
                      " document")
        ax.set_title(f"Chữ ký số chuyên dùng theo kế hoạch — kỳ {period} / The plan's targets,"
                     f" period {period}")
        if rows:
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=7,
                      frameon=False)

        years = list(range(PLAN_YEARS[0], PLAN_YEARS[1] + 1))
        years += sorted(y for y in report.issued_per_year if y not in years)
        issued = [report.issued_per_year.get(y, 0) for y in years]
        running = [sum(issued[: i + 1]) for i in range(len(issued))]
        bx = fig.add_subplot(grid[1, 0])
        bars = bx.bar([str(y) for y in years], issued, color=_ISSUED,
                      label="Cấp trong năm / issued that year")
        bx.bar_label(bars, fontsize=7, padding=2)
        bx.plot([str(y) for y in years], running, color=_CALM, marker="o",
                label="Lũy kế / running total")
        bx.axhline(CERTIFICATES_TARGET, color=_ALARM, linestyle="--", linewidth=1,
                   label=f"Kế hoạch / plan {CERTIFICATES_TARGET:,} ({PLAN_YEARS[0]}–"
                         f"{PLAN_YEARS[1]})")
        bx.set_ylim(0, max(CERTIFICATES_TARGET, *running, 1) * 1.15)
        bx.yaxis.set_major_locator(MaxNLocator(integer=True))
        bx.set_title(f"Chứng thư đã cấp / certificates issued: {report.issued_in_plan:,} of"
                     f" {CERTIFICATES_TARGET:,} ({report.share_of_certificate_target:.1%})",
                     fontsize=9)
        bx.tick_params(axis="x", labelsize=7)
        bx.legend(fontsize=7, loc="upper left")

        cx = fig.add_subplot(grid[1, 1])
        cx.axis("off")
        expiring = " / ".join(str(report.expiring_within(d)) for d in EXPIRY_WINDOWS)
        lines = [
            (len(report.revoked_signing), "Đã thu hồi vẫn ký (CẢNH BÁO)\nrevoked, still signing",
             bool(report.revoked_signing)),
            (len(report.unknown), "Chứng thư chưa đăng ký\nnot in the registry",
             bool(report.unknown)),
            (expiring, f"Hết hạn trong {'/'.join(map(str, EXPIRY_WINDOWS))} ngày\nexpiring"
                       " within (days)", False),
            (len(report.never_used), "Chưa từng sử dụng\nnever used", False),
            (report.requested_open, "Đề nghị chưa cấp\nopen requests", False),
        ]
        for i, (value, label, alarm) in enumerate(lines):
            y = 0.92 - i * 0.2
            cx.text(0.02, y, str(value), fontsize=18, fontweight="bold",
                    color=_ALARM if alarm else _CALM, va="center", transform=cx.transAxes)
            cx.text(0.36, y, label, fontsize=8, va="center", transform=cx.transAxes)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=110,
                    metadata={"Date": None} if fmt == "svg" else None)
        return buffer.getvalue()
    finally:
        plt.close(fig)
