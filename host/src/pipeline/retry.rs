//! Retrying a blocking output's write a few times with a doubling pause, for the
//! host's own outputs (`direct://`, the event outputs): they run on blocking threads,
//! and a batch they give up on is not taken (its sender keeps it).

use std::time::Duration;

/// Tries `write` up to `attempts` times, the pause doubling from `first_pause`;
/// `what` names the output in the log and in the final error.
pub fn with_retries<T>(
    what: &str,
    attempts: u32,
    first_pause: Duration,
    mut write: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let mut pause = first_pause;
    let mut attempt = 1;
    loop {
        match write() {
            Ok(v) => return Ok(v),
            Err(e) if attempt < attempts => {
                tracing::warn!(target: "ceilo::pipeline", "{what}: {e}; retrying in {pause:?}");
                std::thread::sleep(pause);
                pause *= 2;
                attempt += 1;
            }
            Err(e) => return Err(format!("{what}: {e} (gave up after {attempts} attempts)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_then_gives_up_naming_the_output() {
        let mut calls = 0;
        let ok = with_retries("x://", 3, Duration::from_millis(1), || {
            calls += 1;
            if calls < 3 {
                Err("down".to_owned())
            } else {
                Ok(calls)
            }
        });
        assert_eq!(ok, Ok(3));
        let err = with_retries("x://", 2, Duration::from_millis(1), || -> Result<(), _> {
            Err("down".to_owned())
        });
        assert_eq!(err, Err("x://: down (gave up after 2 attempts)".to_owned()));
    }
}
