//! Keeping a hostile host from filling the log: a front end reports bad input through a
//! [`Noise`] counter, which lets the first few reports through and then only every
//! power of two, each with the count so far.

/// Reports of one kind of bad input on one channel.
#[derive(Debug, Default)]
pub struct Noise {
    count: u64,
}

/// Reports logged before thinning starts.
const FIRST: u64 = 10;

impl Noise {
    /// Counts one report; `Some(count)` when this one should be logged.
    pub fn report(&mut self) -> Option<u64> {
        self.count += 1;
        (self.count <= FIRST || self.count.is_power_of_two()).then_some(self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::Noise;

    #[test]
    fn a_million_reports_log_a_few_dozen_times() {
        let mut n = Noise::default();
        let logged = (0..1_000_000).filter(|_| n.report().is_some()).count();
        assert_eq!(logged, 10 + 16);
    }
}
