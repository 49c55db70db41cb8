//! When a mailbox sends its warmup mail on a day, and how long the
//! receiving side waits before it opens or answers. Never metronomic
//! (reference §1.3): times cluster around the owner's send centres with
//! heavy-ish tails, gaps vary, seconds are random and no send falls on a
//! round minute; a late start spreads what still fits over the rest of the
//! window and drops the rest instead of bursting (abhishek-mittal's slot
//! planner, Warmbly's "never schedule in the past").
//!
//! The plan is made in UTC instants and only read in local time, so a DST
//! day needs no special case: a local time that does not exist is never an
//! instant, and the window's ends and the centres, which are local times,
//! resolve an ambiguous time to its earliest instant.

use chrono::{
    DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc,
};
use rand::Rng;
use rand::rngs::StdRng;

/// The least time between two sends of one mailbox (abhishek-mittal's 8 min).
pub const MIN_GAP: Duration = Duration::minutes(8);

/// The window reaches this far before the first centre and after the last.
const REACH: i64 = 2 * 3600;

/// Scale of the Laplace spread around a centre: a standard deviation of
/// ~71 min (the brief's ~±75 min) with tails heavier than a normal's.
const SPREAD_SECS: f64 = 50.0 * 60.0;

/// Extra spacing, up to this, added to each gap a crowded cluster is pushed
/// apart by, so pushed runs are not an exact MIN_GAP metronome.
const MAX_JITTER_SECS: i64 = 4 * 60;

/// Draws before the clustered distribution gives way to a uniform one over
/// what is left of the window (a window far from every centre).
const MAX_DRAWS: u32 = 10_000;

/// Up to `count` send times on the local `date` in `tz`, sorted, at least
/// [`MIN_GAP`] apart, none before `not_before`; fewer only when the rest
/// of the window cannot hold them at that spacing. `centres` empty (which
/// `Settings::validate` refuses) plans nothing.
pub fn plan(
    centres: &[NaiveTime],
    tz: chrono_tz::Tz,
    date: NaiveDate,
    count: u32,
    not_before: DateTime<Utc>,
    rng: &mut StdRng,
) -> Vec<DateTime<Utc>> {
    let (Some(first), Some(last)) = (centres.iter().min(), centres.iter().max()) else {
        return Vec::new();
    };
    if count == 0 {
        return Vec::new();
    }
    let midnight = date.and_time(NaiveTime::MIN);
    let day_secs =
        |t: &NaiveTime, by: i64| (i64::from(t.num_seconds_from_midnight()) + by).clamp(0, 86_399);
    let start = resolve(tz, midnight + Duration::seconds(day_secs(first, -REACH)), 1);
    let end = resolve(tz, midnight + Duration::seconds(day_secs(last, REACH)), -1);
    let (Some(start), Some(end)) = (start, end) else {
        return Vec::new();
    };
    // Whole seconds: a `not_before` with a fraction rounds up, never down.
    let floor = not_before.timestamp() + i64::from(not_before.timestamp_subsec_nanos() > 0);
    let start = start.max(floor);
    if start > end {
        return Vec::new();
    }
    let window = Window { tz, start, end };
    let gap = MIN_GAP.num_seconds();
    let at_most = (end - start) / gap + 1;

    // How many fit: the latest packing from the end at exactly MIN_GAP.
    let tight = window.latest(&vec![gap; i64::from(count).min(at_most) as usize]);
    let n = tight.iter().filter(|&&t| t >= start).count();
    if n == 0 {
        return Vec::new();
    }
    let tight = &tight[tight.len() - n..];
    let slack = tight[0] - start;
    let jitter = if n > 1 {
        MAX_JITTER_SECS.min(slack / (n as i64 - 1))
    } else {
        0
    };
    let mut gaps: Vec<i64> = (0..n).map(|_| gap + rng.gen_range(0..=jitter)).collect();
    let mut latest = window.latest(&gaps);
    if latest.first().is_none_or(|&t| t < start) {
        // Skipping round minutes can eat the jitter's slack; spacing at
        // exactly MIN_GAP is known to fit.
        gaps = vec![gap; n];
        latest = tight.to_vec();
    }

    let anchors: Vec<i64> = centres
        .iter()
        .filter_map(|c| resolve(tz, midnight + Duration::seconds(day_secs(c, 0)), 1))
        .collect();
    let mut draws: Vec<i64> = (0..n).map(|_| window.draw(&anchors, rng)).collect();
    draws.sort_unstable();

    // Forward pass: each send at its draw unless that is too close to the
    // previous one, and never later than the latest packing allows, which
    // keeps room for all that follow (latest[i] ≥ latest[i-1] + gaps[i]).
    let mut out: Vec<i64> = Vec::with_capacity(n);
    for (i, draw) in draws.into_iter().enumerate() {
        let earliest = match out.last() {
            Some(prev) => draw.max(prev + gaps[i]),
            None => draw.max(start),
        };
        out.push(window.next_allowed(earliest).min(latest[i]));
    }
    out.into_iter()
        .filter_map(|t| DateTime::from_timestamp(t, 0))
        .collect()
}

/// The local `at` as a Unix time; a time that does not exist (a DST gap)
/// moves by minutes in the direction of `step` until one does, an
/// ambiguous one takes its earliest instant.
fn resolve(tz: chrono_tz::Tz, at: NaiveDateTime, step: i64) -> Option<i64> {
    // DST gaps are at most a few hours; a day has 1440 minutes.
    (0..1440).find_map(
        |k| match tz.from_local_datetime(&(at + Duration::minutes(k * step))) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.timestamp()),
            LocalResult::None => None,
        },
    )
}

/// The part of a day a mailbox may still send in, as Unix seconds.
struct Window {
    tz: chrono_tz::Tz,
    start: i64,
    end: i64,
}

impl Window {
    /// Not on :00 or :30 of a minute nor of an hour, in local time: round
    /// times are a machine's signature.
    fn allowed(&self, t: i64) -> bool {
        DateTime::from_timestamp(t, 0).is_some_and(|u| {
            let local = u.with_timezone(&self.tz);
            !matches!(local.minute(), 0 | 30) && !matches!(local.second(), 0 | 30)
        })
    }

    /// The first allowed second at or after `t` (at most 61 s on).
    fn next_allowed(&self, t: i64) -> i64 {
        (t..t + 62).find(|&s| self.allowed(s)).unwrap_or(t)
    }

    /// The last allowed second at or before `t`.
    fn prev_allowed(&self, t: i64) -> i64 {
        (t - 61..=t).rev().find(|&s| self.allowed(s)).unwrap_or(t)
    }

    /// The latest allowed times for `gaps.len()` sends packed against the
    /// window's end, send i at least `gaps[i]` after send i-1 (`gaps[0]`
    /// unused); ascending, the first may fall before the start.
    fn latest(&self, gaps: &[i64]) -> Vec<i64> {
        let mut out = Vec::with_capacity(gaps.len());
        let mut at = self.prev_allowed(self.end);
        for (i, g) in gaps.iter().enumerate().rev() {
            out.push(at);
            if i > 0 {
                at = self.prev_allowed(at - g);
            }
        }
        out.reverse();
        out
    }

    /// A time in the window near a random centre, Laplace-distributed.
    fn draw(&self, anchors: &[i64], rng: &mut StdRng) -> i64 {
        for _ in 0..MAX_DRAWS {
            let Some(&centre) = anchors.get(rng.gen_range(0..anchors.len().max(1))) else {
                break;
            };
            let u: f64 = rng.gen_range(-0.5..0.5);
            let offset = -SPREAD_SECS * u.signum() * (1.0 - 2.0 * u.abs()).ln();
            let t = centre + offset.round() as i64;
            if (self.start..=self.end).contains(&t) {
                return t;
            }
        }
        rng.gen_range(self.start..=self.end)
    }
}

/// How long the receiving side leaves a message before it opens it:
/// 45 s to 60 min, log-uniform, so most are read within minutes and some
/// much later (Warmbly's "always within 4 minutes" was a signature).
pub fn dwell(rng: &mut StdRng) -> Duration {
    log_uniform(rng, 45.0, 3600.0)
}

/// How long before a reply goes out: 5 to 240 min, log-uniform
/// (happyhaplu's range).
pub fn reply_delay(rng: &mut StdRng) -> Duration {
    log_uniform(rng, 5.0 * 60.0, 240.0 * 60.0)
}

/// Whole seconds between `lo` and `hi`, uniform in their logarithm.
fn log_uniform(rng: &mut StdRng, lo: f64, hi: f64) -> Duration {
    let secs = rng.gen_range(lo.ln()..=hi.ln()).exp().round();
    Duration::seconds((secs as i64).clamp(lo as i64, hi as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn at(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn centres() -> Vec<NaiveTime> {
        vec![at(9, 0), at(14, 0), at(17, 0)]
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn local(tz: chrono_tz::Tz, d: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
        tz.from_local_datetime(&d.and_time(at(h, m)))
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Every rule a plan must keep, for any input.
    fn check(plan: &[DateTime<Utc>], tz: chrono_tz::Tz, d: NaiveDate, not_before: DateTime<Utc>) {
        for t in plan {
            let l = t.with_timezone(&tz);
            assert_eq!(l.date_naive(), d, "{l}");
            assert!(
                l.time() >= at(7, 0) && l.time() <= at(19, 0),
                "{l} outside the window"
            );
            assert!(!matches!(l.minute(), 0 | 30), "{l} on a round minute");
            assert!(!matches!(l.second(), 0 | 30), "{l} on a round second");
            assert!(*t >= not_before, "{t} before {not_before}");
            assert_eq!(t.timestamp_subsec_nanos(), 0);
        }
        for w in plan.windows(2) {
            assert!(w[1] - w[0] >= MIN_GAP, "{} then {}", w[0], w[1]);
        }
    }

    #[test]
    fn a_day_is_clustered_spaced_and_never_round() {
        let tz = chrono_tz::Europe::London;
        let d = day(2026, 6, 10);
        for seed in 0..50 {
            let mut rng = StdRng::seed_from_u64(seed);
            let p = plan(&centres(), tz, d, 40, local(tz, d, 0, 0), &mut rng);
            assert_eq!(p.len(), 40, "the window holds 40 easily");
            check(&p, tz, d, local(tz, d, 0, 0));
        }
        // Clustered: most sends within 90 min of a centre.
        let mut rng = StdRng::seed_from_u64(3);
        let p = plan(&centres(), tz, d, 40, local(tz, d, 0, 0), &mut rng);
        let near = p
            .iter()
            .filter(|t| {
                [9, 14, 17]
                    .iter()
                    .any(|&h| (**t - local(tz, d, h, 0)).num_minutes().abs() <= 90)
            })
            .count();
        assert!(near >= 30, "{near} of 40 near a centre");
    }

    #[test]
    fn gaps_vary() {
        let tz = chrono_tz::Europe::Paris;
        let d = day(2026, 3, 3);
        let mut rng = StdRng::seed_from_u64(11);
        let p = plan(&centres(), tz, d, 30, local(tz, d, 0, 0), &mut rng);
        let gaps: Vec<i64> = p.windows(2).map(|w| (w[1] - w[0]).num_seconds()).collect();
        let distinct: std::collections::HashSet<_> = gaps.iter().collect();
        assert!(distinct.len() >= gaps.len() - 2, "gaps repeat: {gaps:?}");
        let mean = gaps.iter().sum::<i64>() as f64 / gaps.len() as f64;
        let var = gaps.iter().map(|g| (*g as f64 - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        assert!(var.sqrt() / mean > 0.5, "too even: {gaps:?}");
    }

    #[test]
    fn a_late_start_drops_what_does_not_fit_and_never_bursts() {
        let tz = chrono_tz::Europe::Berlin;
        let d = day(2026, 6, 10);
        let late = local(tz, d, 16, 30) + Duration::seconds(17);
        for seed in 0..30 {
            let mut rng = StdRng::seed_from_u64(seed);
            let p = plan(&centres(), tz, d, 30, late, &mut rng);
            check(&p, tz, d, late);
            // 16:30:17 to 19:00 holds 19 at 8 min; round minutes cost a few.
            assert!((16..=19).contains(&p.len()), "{} sends", p.len());
        }
        let mut rng = StdRng::seed_from_u64(1);
        let few = plan(&centres(), tz, d, 5, late, &mut rng);
        assert_eq!(few.len(), 5, "a few still fit");
        check(&few, tz, d, late);
        let mut rng = StdRng::seed_from_u64(1);
        assert!(plan(&centres(), tz, d, 5, local(tz, d, 19, 1), &mut rng).is_empty());
        assert!(plan(&[], tz, d, 5, late, &mut rng).is_empty());
        assert!(plan(&centres(), tz, d, 0, late, &mut rng).is_empty());
    }

    #[test]
    fn a_full_window_is_filled_to_its_capacity() {
        let tz = chrono_tz::UTC;
        let d = day(2026, 6, 10);
        let mut rng = StdRng::seed_from_u64(5);
        // 07:00 to 19:00 is 720 min: 91 sends at exactly 8 min, minus the
        // few a skipped round minute costs.
        let p = plan(&centres(), tz, d, 200, local(tz, d, 0, 0), &mut rng);
        check(&p, tz, d, local(tz, d, 0, 0));
        assert!((85..=91).contains(&p.len()), "{}", p.len());
    }

    #[test]
    fn dst_days_in_berlin() {
        let tz = chrono_tz::Europe::Berlin;
        // Centres inside the night so the window crosses the changes.
        let night = [at(2, 30), at(4, 0)];
        for d in [day(2026, 3, 29), day(2026, 10, 25)] {
            for seed in 0..20 {
                let mut rng = StdRng::seed_from_u64(seed);
                let p = plan(&night, tz, d, 20, local(tz, d, 0, 0), &mut rng);
                assert_eq!(p.len(), 20, "{d}");
                for t in &p {
                    let l = t.with_timezone(&tz);
                    assert_eq!(l.date_naive(), d);
                    assert!(!matches!(l.minute(), 0 | 30));
                    assert!(l.time() >= at(0, 30) && l.time() <= at(6, 0), "{l}");
                }
                for w in p.windows(2) {
                    assert!(w[1] - w[0] >= MIN_GAP, "{d}: {} then {}", w[0], w[1]);
                }
            }
        }
        // The spring day's usual window is an hour shorter in real time.
        let mut rng = StdRng::seed_from_u64(2);
        let spring = day(2026, 3, 29);
        let p = plan(
            &centres(),
            tz,
            spring,
            30,
            local(tz, spring, 0, 0),
            &mut rng,
        );
        check(&p, tz, spring, local(tz, spring, 0, 0));
        assert_eq!(p.len(), 30);
    }

    #[test]
    fn a_seed_gives_the_same_plan() {
        let tz = chrono_tz::America::New_York;
        let d = day(2026, 11, 2);
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            plan(&centres(), tz, d, 25, local(tz, d, 8, 0), &mut rng)
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }

    #[test]
    fn dwell_and_reply_delays_are_spread_over_their_ranges() {
        let mut rng = StdRng::seed_from_u64(4);
        let dwells: Vec<i64> = (0..2000).map(|_| dwell(&mut rng).num_seconds()).collect();
        assert!(dwells.iter().all(|s| (45..=3600).contains(s)));
        let quick = dwells.iter().filter(|&&s| s <= 240).count();
        let slow = dwells.iter().filter(|&&s| s >= 1800).count();
        // log-uniform: ~38 % within 4 min, ~16 % after half an hour.
        assert!((600..=950).contains(&quick), "{quick} within 4 min");
        assert!((200..=450).contains(&slow), "{slow} after 30 min");
        let replies: Vec<i64> = (0..2000)
            .map(|_| reply_delay(&mut rng).num_minutes())
            .collect();
        assert!(replies.iter().all(|m| (5..=240).contains(m)));
        assert!(replies.iter().filter(|&&m| m < 30).count() > 500);
        assert!(replies.iter().filter(|&&m| m > 120).count() > 200);
    }
}
