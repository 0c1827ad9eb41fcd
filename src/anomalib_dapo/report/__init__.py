"""Paper reports: the zero-shot protocol over a target dataset, tabled beside the DAPO paper's published numbers."""

from anomalib_dapo.report.paper_report import (
    CategoryResult,
    Table,
    build_tables,
    evaluate_category,
    main,
    new_version_dir,
    paper_report,
    write_report,
)
from anomalib_dapo.report.published import METRICS, PUBLISHED, TABLES, Published, TableSpec, published

__all__ = [
    "METRICS",
    "PUBLISHED",
    "TABLES",
    "CategoryResult",
    "Published",
    "Table",
    "TableSpec",
    "build_tables",
    "evaluate_category",
    "main",
    "new_version_dir",
    "paper_report",
    "published",
    "write_report",
]
