"""Memory: a segment worker's peak RSS does not grow with video length (1 min vs 10 min)."""

import pytest

from benchmarks.bench_memory import measure_worker_peak_rss, write_test_video

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_peak_rss_of_a_segment_worker_does_not_grow_with_video_length(tmp_path):
    short, long = tmp_path / "1min.mp4", tmp_path / "10min.mp4"
    write_test_video(short, 60, (160, 96))
    write_test_video(long, 600, (160, 96))

    short_run = measure_worker_peak_rss(str(short))
    long_run = measure_worker_peak_rss(str(long))

    print(f"peak RSS 1 min: {short_run['peak_rss_mb']:.1f} MB, 10 min: {long_run['peak_rss_mb']:.1f} MB")
    assert long_run["sampled_frames"] == 10 * short_run["sampled_frames"] == 600
    # 540 more sampled 224x224 frames would be 81 MB if they were all kept.
    assert long_run["peak_rss_mb"] - short_run["peak_rss_mb"] < 20
