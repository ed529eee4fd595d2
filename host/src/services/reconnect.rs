//! The pause between broker sessions of the consuming services (notification agent,
//! collector): doubling from 200 ms up to 10 s, cut short by shutdown.

use std::time::Duration;

use tokio::sync::watch;

const FIRST: Duration = Duration::from_millis(200);
const LONGEST: Duration = Duration::from_secs(10);

/// The delay before the next reconnection attempt.
#[derive(Debug, Clone, Copy)]
pub struct Reconnect {
    delay: Duration,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect { delay: FIRST }
    }
}

impl Reconnect {
    /// How long the next wait is (for the log line that announces it).
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Waits, then doubles the next delay. False when shutdown came first.
    pub async fn wait(&mut self, shutdown: &mut watch::Receiver<bool>) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(self.delay) => {}
            _ = shutdown.changed() => return false,
        }
        self.delay = (self.delay * 2).min(LONGEST);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn doubles_up_to_ten_seconds_and_stops_on_shutdown() {
        let (tx, mut rx) = watch::channel(false);
        let mut r = Reconnect::default();
        let mut seen = Vec::new();
        for _ in 0..8 {
            seen.push(r.delay().as_millis());
            assert!(r.wait(&mut rx).await);
        }
        assert_eq!(seen, vec![200, 400, 800, 1600, 3200, 6400, 10000, 10000]);
        tx.send(true).unwrap();
        assert!(!r.wait(&mut rx).await);
    }
}
