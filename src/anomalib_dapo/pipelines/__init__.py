"""anomalib pipelines for the plugin's models: a benchmark that also runs zero-/few-shot models side by side."""

from anomalib_dapo.pipelines.benchmark import DapoBenchmark, DapoBenchmarkJob, DapoBenchmarkJobGenerator

__all__ = ["DapoBenchmark", "DapoBenchmarkJob", "DapoBenchmarkJobGenerator"]
