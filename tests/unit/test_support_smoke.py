"""The recording receiver and the database fixtures work as the other tests assume."""

from __future__ import annotations

import httpx

from support.receiver import RecordingReceiver


def test_recording_receiver_scripts_replies_and_records_bodies(
    receiver: RecordingReceiver,
) -> None:
    receiver.reply(503, "busy")
    first = httpx.post(
        receiver.url,
        content=b"data=%7B%22id%22%3A+%22x%22%7D",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    second = httpx.post(
        receiver.url,
        content=b"data=%7B%22id%22%3A+%22x%22%7D",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert first.status_code == 503
    assert second.json() == {"integrationUrl": "https://crm.example/leads/x"}
    assert [r.document()["id"] for r in receiver.wait_for(2)] == ["x", "x"]
