"""The benchmark's fast form runs in CI: it must complete and report every figure.
Its numbers are printed, never asserted (timing assertions are flaky on shared machines)."""

from __future__ import annotations

import json

from tests.bench.ingest import main


def test_quick_benchmark_reports_every_figure(capsys):
    assert main(["--quick", "--json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out[out.index('{\n  "quick"') :])
    assert report["quick"] is True
    assert set(report["verify_and_normalise"]) >= {"twilio", "meta", "hubspot", "standard-webhooks"}
    assert report["cold_import_ms"]["ratio_ingest_to_boto3"] > 0
    assert report["local_end_to_end_twilio_sms"]["per_second"] > 0
    assert report["local_auto_reply_twilio_sms"]["p50_ms"] > 0
    print(json.dumps(report))


def test_quick_routing_benchmark_reports_growth(capsys):
    from tests.bench import routing

    assert routing.main(["--quick", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["cpu_us_per_event"]) == {"10", "100", "1000", "10000"}
    assert report["rules"] == 1000 and report["ratio_to_10_phrases"]["10"] == 1.0
