"""``python -m anomalib_dapo.report``: the same as ``dapo-report``."""

from anomalib_dapo.report.paper_report import main

main()
