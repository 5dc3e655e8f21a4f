import time

from meterline.pipeline import new_request_id


def test_request_ids_are_32_hex_digits_that_sort_by_the_time_they_were_made() -> None:
    before = time.time_ns() // 1_000_000
    first = new_request_id()
    time.sleep(0.002)
    second = new_request_id()
    after = time.time_ns() // 1_000_000
    assert len(first) == len(second) == 32
    assert int(first, 16) and int(second, 16)  # hex only
    assert before <= int(first[:12], 16) <= int(second[:12], 16) <= after
    assert first < second


def test_request_ids_made_in_the_same_millisecond_still_differ() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert len({i[12:] for i in ids}) == len(ids)  # the random part alone tells them apart
