"""The adaptive send rate (ml_backends.control.adaptive_rate) on a clock the tests drive: its
cuts, its growth, its pacing, and a simulated service with a token-bucket quota."""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import pytest

from ml_backends.control.adaptive_rate import BETA, FLOOR, AdaptiveRate, RateLimits, Ticket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def limiter(ceiling: float | None = None) -> tuple[AdaptiveRate, Clock]:
    clock = Clock()
    return AdaptiveRate(ceiling, clock), clock


def send(rate: AdaptiveRate, now: float) -> Ticket:
    rate.arrive(now)
    return rate.send(now)


def test_unlimited_until_the_service_first_throttles_and_the_ceiling_paces() -> None:
    free, _ = limiter()
    assert free.rate(0.0) is None and free.delay(0.0) == 0.0
    capped, _ = limiter(ceiling=4)
    send(capped, 0.0)
    assert capped.delay(0.0) == pytest.approx(0.25)
    assert capped.delay(0.25) == 0.0


def test_a_throttle_cuts_to_beta_of_what_was_sent_in_the_last_second() -> None:
    rate, _ = limiter()
    tickets = [send(rate, i * 0.05) for i in range(18)]  # 18 sent within 0.85 s
    assert rate.throttled(tickets[-1], 0.9)
    assert rate.w_max == 18
    assert rate.rate(0.9) == pytest.approx(BETA * 18)


def test_answers_to_requests_sent_before_a_cut_do_not_cut_again() -> None:
    rate, _ = limiter()
    early = [send(rate, 0.0) for _ in range(8)]
    assert rate.throttled(early[0], 0.01)
    assert not any(rate.throttled(ticket, 0.02) for ticket in early[1:])
    assert rate.cuts == 1
    later = rate.send(0.5)
    assert rate.throttled(later, 0.51)
    assert rate.cuts == 2


def test_a_cut_never_takes_more_than_beta_of_the_rate_in_force() -> None:
    """Few requests in the last second (a statement just began) is no measure of what
    the service allows: the refused rate stays within [BETA, 1] x the current one."""
    rate, _ = limiter(ceiling=20)
    ticket = send(rate, 10.0)
    rate.throttled(ticket, 10.01)
    assert rate.w_max == pytest.approx(BETA * 20)


def test_the_rate_grows_back_along_cubics_curve() -> None:
    rate, clock = limiter()
    tickets = [send(rate, 0.0) for _ in range(10)]
    rate.throttled(tickets[0], 0.0)
    k = math.cbrt(10 * (1 - BETA) / 0.4)
    rates = [rate.rate(t / 10) or 0.0 for t in range(80)]
    assert rates == sorted(rates)  # never falls while requests succeed
    assert rates[0] == pytest.approx(7.0)
    assert rate.rate(k) == pytest.approx(10.0)  # back at w_max after K seconds...
    assert rate.rate(k + 1) == pytest.approx(10.4)  # ...then probing beyond it
    clock.now = 1.0
    assert rate.rate() == rate.rate(1.0)


def test_the_curve_stands_still_while_the_backend_is_idle() -> None:
    rate, _ = limiter()
    ticket = send(rate, 0.0)
    rate.throttled(ticket, 0.0)
    half_a_second_on = rate.rate(0.5)
    rate.leave(0.0)  # idle from 0 s to 100 s
    assert rate.rate(100.0) == pytest.approx(max(FLOOR, BETA * 1))
    rate.arrive(100.0)
    assert rate.rate(100.5) == pytest.approx(half_a_second_on)


def test_pacing_spaces_requests_evenly_at_the_rate() -> None:
    rate, _ = limiter()
    tickets = [send(rate, 0.0) for _ in range(20)]
    rate.throttled(tickets[0], 0.0)  # 14/s
    rate.arrive(0.0)
    assert rate.delay(0.0) == pytest.approx(1 / 14)
    rate.send(1 / 14)
    assert rate.delay(1 / 14) == pytest.approx(1 / 14, rel=0.05)  # the rate grew a little


def test_limits_are_per_service_and_listed_as_status_rows() -> None:
    limits = RateLimits(ceiling=50)
    assert limits.for_service("comprehend") is limits.for_service("comprehend")
    assert limits.for_service("churn") is not limits.for_service("comprehend")
    assert limits.status_rows() == [
        ("Mlproxy_ml_send_rate_churn", "50.00"),
        ("Mlproxy_ml_send_rate_comprehend", "50.00"),
    ]
    assert RateLimits().for_service("x").rate() is None


# -- a simulated service with a token-bucket quota ---------------------------------------


@dataclass
class Service:
    """Serves ``quota`` requests per second from a bucket of ``burst``; throttles the rest."""

    quota: float
    burst: float
    tokens: float = field(init=False)
    updated: float = 0.0
    served: int = 0
    throttled: int = 0

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def admit(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.quota)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            self.served += 1
            return True
        self.throttled += 1
        return False


def simulate(
    service: Service, needed: int, in_flight: int = 8, rtt: float = 0.005
) -> tuple[float, AdaptiveRate]:
    """Seconds to get ``needed`` requests served, retrying throttled ones, with
    ``in_flight`` requests at most and a fixed round trip."""
    rate, clock = limiter()
    answers: list[tuple[float, int, Ticket, bool]] = []  # (time, seq, ticket, served)
    waiting, flying, seq = needed, 0, 0
    while service.served < needed:
        while waiting and flying < in_flight and rate.delay(clock.now) == 0:
            rate.arrive(clock.now)
            ticket = rate.send(clock.now)
            served = service.admit(clock.now + rtt / 2)
            heapq.heappush(answers, (clock.now + rtt, seq := seq + 1, ticket, served))
            waiting, flying = waiting - 1, flying + 1
        wake = [answers[0][0]] if answers else []
        if waiting and flying < in_flight:
            wake.append(clock.now + rate.delay(clock.now))
        clock.now = min(wake)
        while answers and answers[0][0] <= clock.now:
            _, _, ticket, served = heapq.heappop(answers)
            flying -= 1
            if not served:
                rate.throttled(ticket, clock.now)
                waiting += 1
            rate.leave(clock.now)
    return clock.now, rate


@pytest.mark.parametrize(
    ("quota", "burst", "needed"), [(10, 10, 80), (10, 10, 400), (100, 100, 2000), (5, 20, 100)]
)
def test_a_token_bucket_quota_is_found_and_used(quota: float, burst: float, needed: int) -> None:
    service = Service(quota, burst)
    seconds, _ = simulate(service, needed)
    allowed = (needed - burst) / quota  # the fastest the quota lets anyone go
    assert seconds <= 1.2 * allowed
    assert service.throttled <= 0.2 * needed


def test_a_slow_service_is_never_throttled_and_never_paced() -> None:
    service = Service(quota=1000, burst=1000)
    seconds, rate = simulate(service, 400, rtt=0.05)
    assert service.throttled == 0 and rate.rate() is None
    assert seconds == pytest.approx(400 / 8 * 0.05)


def test_the_rate_grows_no_further_than_twice_what_was_ever_sent_in_a_second() -> None:
    """A rate never used is no knowledge: growing without bound would make the next
    throttle's cuts take many round trips to come down."""
    rate, _ = limiter()
    tickets = [send(rate, i * 0.1) for i in range(10)]  # 10 in a second, at most
    rate.throttled(tickets[-1], 0.95)
    assert rate.rate(1000.0) == pytest.approx(20.0)
