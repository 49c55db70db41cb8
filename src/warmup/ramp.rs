//! How many warmup messages a mailbox sends on a day, and how much campaign
//! mail it may send while it warms up. Pure functions of the settings, the
//! mailbox's seed, the ramp step and the date, so a restart plans the same
//! day again and tests need no clock.

use chrono::{Datelike, Duration, NaiveDate, Weekday};

use super::settings::{Ramp, Settings, SlowRamp};

/// The spec's schedule (day 1: 2, day 2: 5, day 3: 12, … day 14: 40) with
/// the days it leaves out interpolated linearly between day 3 and day 14
/// (12 + 28·(d−3)/11, rounded).
pub const SPEC_DAYS: [u32; 14] = [2, 5, 12, 15, 17, 20, 22, 25, 27, 30, 32, 35, 37, 40];

/// A spam placement cuts the rest of the day to this share of its plan
/// and freezes the ramp for [`FREEZE_HOURS`] (Warmbly's closed loop).
pub const SPAM_CUT: f64 = 0.75;
pub const FREEZE_HOURS: i64 = 72;

/// Ramp steps until the ceiling: 14 for the spec's schedule.
pub fn ramp_days(ramp: &Ramp) -> u32 {
    match *ramp {
        Ramp::Spec => SPEC_DAYS.len() as u32,
        Ramp::Linear {
            start,
            increment,
            ceiling,
        } => (ceiling.saturating_sub(start)).div_ceil(increment.max(1)) + 1,
    }
}

/// The volume of ramp step `step` (1-based) before the daily variation;
/// past the last step, the ceiling.
pub fn base_volume(ramp: &Ramp, step: u32) -> u32 {
    let step = step.max(1);
    match *ramp {
        Ramp::Spec => SPEC_DAYS[(step as usize).min(SPEC_DAYS.len()) - 1],
        Ramp::Linear {
            start,
            increment,
            ceiling,
        } => start
            .saturating_add(increment.saturating_mul(step - 1))
            .min(ceiling),
    }
}

/// Whether the mailbox warms up on `date` at all.
pub fn sends_on(settings: &Settings, date: NaiveDate) -> bool {
    !(settings.weekdays_only && matches!(date.weekday(), Weekday::Sat | Weekday::Sun))
}

/// A number in [0, 1) fixed by the seed and the date (SplitMix64), so the
/// variation of a day is the same however often it is planned.
pub fn unit(seed: u64, date: NaiveDate, salt: u64) -> f64 {
    let mut z = seed
        ^ (date.num_days_from_ce() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ salt.wrapping_mul(0xD1B5_4A32_D192_ED69);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The day's warmup volume: the ramp step's (or, once `done`, the
/// maintenance) volume, varied by ± `variation_pct`; 0 on a day off.
pub fn day_volume(settings: &Settings, seed: u64, step: u32, date: NaiveDate, done: bool) -> u32 {
    if !sends_on(settings, date) {
        return 0;
    }
    let base = if done {
        settings.maintenance
    } else {
        base_volume(&settings.ramp, step)
    };
    if base == 0 {
        return 0;
    }
    let spread = f64::from(settings.variation_pct) / 100.0;
    let factor = 1.0 + spread * (2.0 * unit(seed, date, 1) - 1.0);
    ((f64::from(base) * factor).round() as u32).max(1)
}

/// What a spam placement leaves of a day planned at `planned`.
pub fn cut(planned: u32) -> u32 {
    (f64::from(planned) * SPAM_CUT).floor() as u32
}

/// Campaign messages a warming mailbox may send on warmup day `day`
/// (1-based, counted from the first day of warmup): none in the quiet
/// days, then the slow ramp, never over its daily limit.
pub fn campaign_allowance(slow: &SlowRamp, day: u32, daily_limit: u32) -> u32 {
    if day <= slow.quiet_days {
        return 0;
    }
    slow.start
        .saturating_add(slow.increment.saturating_mul(day - slow.quiet_days - 1))
        .min(daily_limit)
}

/// The day the ramp is expected to be done: `steps_done` of its steps are
/// behind it and the next sending day from `from` on takes the next one.
pub fn ready_date(settings: &Settings, steps_done: u32, from: NaiveDate) -> NaiveDate {
    let mut left = ramp_days(&settings.ramp).saturating_sub(steps_done);
    let mut day = from;
    while left > 0 {
        if sends_on(settings, day) {
            left -= 1;
        }
        day += Duration::days(1);
    }
    day
}

/// Local midnight of `day` in `tz` as an instant (the bulk answer's
/// `ready_date`); on a day that starts in a DST gap, the first instant.
pub fn midnight(day: NaiveDate, tz: chrono_tz::Tz) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    let start = day.and_time(chrono::NaiveTime::MIN);
    tz.from_local_datetime(&start)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(start + Duration::hours(1)))
                .earliest()
        })
        .map_or_else(|| start.and_utc(), |t| t.with_timezone(&chrono::Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_spec_schedule_keeps_its_points_and_rises_every_day() {
        let s = Settings::default();
        assert_eq!(base_volume(&s.ramp, 1), 2);
        assert_eq!(base_volume(&s.ramp, 2), 5);
        assert_eq!(base_volume(&s.ramp, 3), 12);
        assert_eq!(base_volume(&s.ramp, 14), 40);
        assert_eq!(
            base_volume(&s.ramp, 30),
            40,
            "the ceiling after the last step"
        );
        assert!(SPEC_DAYS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ramp_days(&s.ramp), 14);
    }

    #[test]
    fn a_linear_ramp_climbs_to_its_ceiling() {
        let r = Ramp::Linear {
            start: 5,
            increment: 3,
            ceiling: 20,
        };
        let v: Vec<u32> = (1..=8).map(|d| base_volume(&r, d)).collect();
        assert_eq!(v, [5, 8, 11, 14, 17, 20, 20, 20]);
        assert_eq!(ramp_days(&r), 6);
    }

    #[test]
    fn variation_stays_within_its_share_and_is_the_same_each_time() {
        let s = Settings::default();
        let start = date("2026-12-01");
        let mut seen = std::collections::HashSet::new();
        for d in 0..200 {
            let day = start + Duration::days(d);
            let v = day_volume(&s, 42, 14, day, false);
            assert!((32..=48).contains(&v), "{v} is not 40 ± 20 %");
            assert_eq!(v, day_volume(&s, 42, 14, day, false));
            seen.insert(v);
        }
        assert!(seen.len() > 8, "the volume varies: {seen:?}");
        assert_ne!(
            (0..30)
                .map(|d| day_volume(&s, 1, 14, start + Duration::days(d), false))
                .collect::<Vec<_>>(),
            (0..30)
                .map(|d| day_volume(&s, 2, 14, start + Duration::days(d), false))
                .collect::<Vec<_>>(),
            "two seeds, two patterns"
        );
        assert_eq!(
            day_volume(&s, 42, 1, start, true),
            day_volume(&s, 42, 99, start, true)
        );
    }

    #[test]
    fn weekdays_only_rests_at_the_weekend_and_moves_the_ready_date() {
        let s = Settings {
            weekdays_only: true,
            ..Settings::default()
        };
        let saturday = date("2026-12-05");
        assert_eq!(day_volume(&s, 7, 3, saturday, false), 0);
        assert!(day_volume(&s, 7, 3, date("2026-12-07"), false) > 0);
        // 14 sending days from Monday 2026-12-07: two weekends later.
        assert_eq!(ready_date(&s, 0, date("2026-12-07")), date("2026-12-25"));
        let every_day = Settings::default();
        assert_eq!(
            ready_date(&every_day, 0, date("2026-12-07")),
            date("2026-12-21")
        );
        assert_eq!(
            ready_date(&every_day, 14, date("2026-12-07")),
            date("2026-12-07")
        );
    }

    #[test]
    fn campaign_mail_waits_out_the_quiet_week_then_ramps_slowly() {
        let slow = Settings::default().slow_ramp;
        let v: Vec<u32> = (1..=11).map(|d| campaign_allowance(&slow, d, 40)).collect();
        assert_eq!(v, [0, 0, 0, 0, 0, 0, 0, 2, 4, 6, 8]);
        assert_eq!(
            campaign_allowance(&slow, 60, 40),
            40,
            "never over the daily limit"
        );
        assert_eq!(cut(40), 30);
        assert_eq!(cut(1), 0);
    }
}
